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
