// Package adx reads and writes IHE ADX (Aggregate Data Exchange) messages as DHIS2 speaks
// them, converting between ADX groups and Tally's canonical data values.
//
// Decode streams a message into a transform.Sink with bounded memory: it converts ADX
// periods (ISO 8601 start/duration) to DHIS2 period ids, keeps category attributes as
// category → option pairs for mapping to resolve, applies DHIS2's annotation rules, and
// reports problems with line, column and element path, such as
// "/adx/group[2]/dataValue[5]@value". It reads XML with a strictly validating scanner of
// its own: no DTDs, no entities beyond the predefined five, limits on depth, attributes,
// text and tag size (see Limits) and at most 64 namespace declarations in scope.
//
// Periods follow DHIS2 2.43's AdxPeriod: the duration picks the family and, for P7D
// and P1Y, the start's weekday or month the type (see period.ParseISO). So
// "2026-02-01/P1Y" becomes the FinancialFeb id "2026Feb" and "2026-01-16/P7D", a
// Friday, the WeeklyFriday id "2026FriW3" — types DHIS2 knows from 2.43 only, where
// 2.42 and older refuse the group. period.ISOAvailableIn tells the release an ADX
// period needs, period.AvailableIn (or Period.Type().Since()) the release an id needs,
// and a transform.Batcher with BatcherConfig.Release refuses the values whose period
// the target release does not know.
//
// As in DHIS2 2.38–2.42, a problem with one <dataValue> (a missing dataElement or
// value attribute, a text data element without annotation) is that value's alone: it
// goes to the sink's Reject method with the conflict DHIS2 reports ({"object":"ADX
// Error", "value": message}, or the data element as object), and the other values are
// read. A problem with a <group> or the document ends the read, as DHIS2 fails the whole
// import for it.
//
// Identifiers stay as written; every transform.Group that Decode emits carries the
// request's id schemes with idScheme defaulting to CODE, ADX's default in DHIS2.
//
// An Encoder writes canonical values back as ADX, one group at a time, in the layout
// DHIS2 exports.
//
// Attributes with a meaning (on <group>: orgUnit, period, dataSet, completeDate,
// attributeOptionCombo; on <dataValue>: dataElement, value, categoryOptionCombo; on
// either: comment, storedBy, followup, deleted, and created and lastUpdated, which are
// ignored) are never categories; group-level comment, storedBy, followup, deleted and
// categoryOptionCombo apply to each value of the group that does not set its own, as
// DHIS2 2.38–2.42 copies group attributes onto each value. Attributes in a namespace
// (xsi:schemaLocation, say) are ignored.
package adx
