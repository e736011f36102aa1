import {daysFromCivil, daysInMonth, MS_PER_DAY} from './civil-time.js'
import {digitAt, fail, success, twoDigits, UNRECOGNISED, type ParsedTimestamp, type TimestampFailure} from './timestamp-formats.js'

const PAD2: string[] = Array.from({length: 100}, (_, i) => String(i).padStart(2, '0'))

/**
 * Reads `YYYY-MM-DDTHH:mm[:ss[.f{1,9}]][zone]` in s[start, end): date and time fields, then the zone
 * (`Z`, `±HH:MM`, `±HHMM`, or none for UTC), each field checked against the calendar.
 */
export function parseIso(s: string, start: number, end: number): ParsedTimestamp | TimestampFailure {
  const y1 = twoDigits(s, start)
  const y2 = twoDigits(s, start + 2)
  const month = twoDigits(s, start + 5)
  const day = twoDigits(s, start + 8)
  if (y1 < 0 || y2 < 0 || month < 0 || day < 0 || s.charCodeAt(start + 7) !== 45) return fail(UNRECOGNISED)
  const year = y1 * 100 + y2
  const length = end - start
  if (length === 10) return fail('date without a time of day: expected YYYY-MM-DDTHH:mm:ss')
  const separator = s.charCodeAt(start + 10)
  if (length < 16 || (separator !== 84 && separator !== 116 && separator !== 32)) return fail(UNRECOGNISED)
  const hour = twoDigits(s, start + 11)
  const minute = twoDigits(s, start + 14)
  if (hour < 0 || minute < 0 || s.charCodeAt(start + 13) !== 58) return fail(UNRECOGNISED)

  let p = start + 16
  let second = 0
  let milli = 0
  if (p < end && s.charCodeAt(p) === 58) {
    if (p + 3 > end || (second = twoDigits(s, p + 1)) < 0) return fail(UNRECOGNISED)
    p += 3
    if (p < end && s.charCodeAt(p) === 46) {
      const fractionStart = ++p
      let d: number
      while (p < end && (d = digitAt(s, p)) >= 0) {
        if (p - fractionStart < 3) milli = milli * 10 + d
        p++
      }
      const digits = p - fractionStart
      if (digits === 0) return fail(UNRECOGNISED)
      if (digits > 9) return fail('fraction of a second longer than 9 digits')
      if (digits === 1) milli *= 100
      else if (digits === 2) milli *= 10
    }
  }

  let offsetMinutes = 0
  let zoned = false
  if (p < end) {
    const zone = s.charCodeAt(p)
    if (zone === 90 || zone === 122) {
      if (p + 1 !== end) return fail(UNRECOGNISED)
    } else if (zone === 43 || zone === 45) {
      const rest = end - p
      const zoneHour = twoDigits(s, p + 1)
      let zoneMinute: number
      if (rest === 6 && s.charCodeAt(p + 3) === 58) zoneMinute = twoDigits(s, p + 4)
      else if (rest === 5) zoneMinute = twoDigits(s, p + 3)
      else return fail(UNRECOGNISED)
      if (zoneHour < 0 || zoneMinute < 0) return fail(UNRECOGNISED)
      if (zoneHour > 23) return fail(`zone offset hour ${PAD2[zoneHour]} is out of range (expected 00-23)`)
      if (zoneMinute > 59) return fail(`zone offset minute ${PAD2[zoneMinute]} is out of range (expected 00-59)`)
      offsetMinutes = zoneHour * 60 + zoneMinute
      if (zone === 45) offsetMinutes = -offsetMinutes
    } else {
      return fail(UNRECOGNISED)
    }
    zoned = true
  }

  if (month < 1 || month > 12) return fail(`month ${PAD2[month]} does not exist (expected 01-12)`)
  const monthDays = daysInMonth(year, month)
  if (day < 1 || day > monthDays) {
    return fail(`day ${PAD2[day]} does not exist in ${PAD2[y1]}${PAD2[y2]}-${PAD2[month]} (expected 01-${monthDays})`)
  }
  if (hour > 23) return fail(`hour ${PAD2[hour]} is out of range (expected 00-23)`)
  if (minute > 59) return fail(`minute ${PAD2[minute]} is out of range (expected 00-59)`)
  if (second > 59) {
    return fail(second === 60 ? 'second 60 (a leap second) is not accepted (expected 00-59)' : `second ${PAD2[second]} is out of range (expected 00-59)`)
  }

  const ms = daysFromCivil(year, month, day) * MS_PER_DAY + hour * 3_600_000 + (minute - offsetMinutes) * 60_000 + second * 1000 + milli
  return success(ms, zoned ? 'iso8601' : 'iso8601-no-zone')
}
