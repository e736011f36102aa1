/**
 * Proleptic Gregorian calendar arithmetic in UTC for the timestamp parser: days since 1970-01-01
 * of a civil date and back, month lengths, and the ISO 8601 text of an epoch-ms instant.
 */

export const MS_PER_DAY = 86_400_000

export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return 30 + ((month + (month >> 3)) & 1)
}

/**
 * Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). Used instead of
 * `Date.UTC`, which maps years 0-99 to 1900-1999; same results for every valid date, and faster.
 */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146_097 + doe - 719_468
}

/** `YYYY-MM-DDTHH:mm:ss.sssZ` of an integer epoch-ms instant already known to be in the years 0000-9999. */
export function isoOfMillis(t: number): string {
  const days = Math.floor(t / MS_PER_DAY)
  let rest = t - days * MS_PER_DAY
  // Civil date from days (proleptic Gregorian, H. Hinnant's algorithm), counted from 0000-03-01
  // minus one 400-year era so every value stays a positive int32 and `| 0` is floor division.
  const z = days + 719_468 + 146_097
  const era = (z / 146_097) | 0
  const doe = z - era * 146_097
  const yoe = ((doe - ((doe / 1460) | 0) + ((doe / 36_524) | 0) - ((doe / 146_096) | 0)) / 365) | 0
  const doy = doe - (365 * yoe + ((yoe / 4) | 0) - ((yoe / 100) | 0))
  const mp = ((5 * doy + 2) / 153) | 0
  const day = doy - (((153 * mp + 2) / 5) | 0) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  const year = yoe + (era - 1) * 400 + (month <= 2 ? 1 : 0)
  const hour = (rest / 3_600_000) | 0
  rest -= hour * 3_600_000
  const minute = (rest / 60_000) | 0
  rest -= minute * 60_000
  const second = (rest / 1000) | 0
  const milli = rest - second * 1000
  const century = (year / 100) | 0
  const yearOfCentury = year - century * 100
  // One flat string from char codes: about twice as fast as concatenating padded pieces.
  return String.fromCharCode(
    48 + ((century / 10) | 0),
    48 + (century % 10),
    48 + ((yearOfCentury / 10) | 0),
    48 + (yearOfCentury % 10),
    45,
    48 + ((month / 10) | 0),
    48 + (month % 10),
    45,
    48 + ((day / 10) | 0),
    48 + (day % 10),
    84,
    48 + ((hour / 10) | 0),
    48 + (hour % 10),
    58,
    48 + ((minute / 10) | 0),
    48 + (minute % 10),
    58,
    48 + ((second / 10) | 0),
    48 + (second % 10),
    46,
    48 + ((milli / 100) | 0),
    48 + (((milli / 10) | 0) % 10),
    48 + (milli % 10),
    90,
  )
}
