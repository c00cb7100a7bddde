// Package dvs reads DHIS2 data value sets — JSON, XML (DXF2) and CSV, including DHIS2
// analytics output and CHT's DHIS2 export — into Tally's canonical model, and writes
// batches back out as the JSON body DHIS2 imports.
//
// Every decoder streams: it reads the payload once through a bounded buffer and pushes
// what it reads into a transform.Sink (normally a transform.Batcher) — Group once for the
// header, then Value for each data value with the header's period, org unit and attribute
// option combo already applied, as DHIS2 applies them. Memory therefore does not grow with
// the payload, and no decoder tracks line numbers unless something is wrong: positions are
// worked out only when the sink asks a transform.Locator.
//
// Inputs are untrusted. Decoders validate strictly (RFC 8259 JSON in UTF-8, well-formed
// XML without DTDs, RFC 4180 CSV), bound the size of any single token and the nesting
// depth, never panic, and report each problem as a *transform.InputError naming the line,
// column, path (dataValues[3].period, /dataValueSet/dataValue[4]/@value, or a CSV
// column), field, value found and what was expected.
//
// # Source flavours
//
// DHIS2 analytics output (/api/analytics/dataValueSet.json, and what an aggregate data
// exchange posts) is a data value set whose values carry the comment "[aggregated]" and,
// for totals, no combos; Options.Analytics drops that comment so it is not written into the
// target.
//
// CHT's DHIS2 export (GET /api/v2/export/dhis) is a data value set with numeric values, a
// header period and no header org unit; its completeDate is the date of the export, not a
// statement that the data set is complete. DecodeJSON keeps it in the Group like any
// complete date: whether a source's completeDate registers completion is a per-source
// decision for the stages after parsing. A bare JSON array of data values (CHT's
// dataValues alone) is read as a set without a header.
//
// # Choosing a decoder
//
// DetectFormat names the format from the Content-Type and the first bytes (ADX, which
// package adx reads, included); Decompress unwraps gzip bodies first.
package dvs
