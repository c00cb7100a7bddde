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
// DetectAsDHIS2 names the format by the Content-Type as DHIS2's POST /api/dataValueSets
// does, refusing what DHIS2 answers with 415; DetectFormat is Tally's lenient detection
// for its own endpoints, from the Content-Type and the first bytes (ADX, which package
// adx reads, included). Decompress unwraps gzip bodies first, and Peek returns the head
// to sniff without losing it.
//
// # Values DHIS2 would refuse
//
// An empty data value set ({}, {"dataValues":[]}, <dataValueSet/>, a CSV header row)
// is valid and yields no values, as DHIS2 imports it successfully. A problem with one
// value that the parser finds itself (a bad boolean in XML or CSV) is passed to the
// sink's Reject method when it is a transform.Rejecter and the parse goes on, so that a
// transform.Batcher in PerValue mode keeps the other values, as DHIS2 2.38–2.42 does;
// problems with the document (malformed input, a bad header field, an unknown import
// strategy) end the parse.
//
// # Where Tally differs from DHIS2, and why
//
// Tally follows DHIS2's reading of a payload (field names, header inheritance, numbers as
// values, unknown members ignored) so that what a client sends to DHIS2 works unchanged.
// It is stricter where DHIS2's leniency loses data silently, and more lenient where
// DHIS2 refuses a payload for reasons of form only:
//
//   - Booleans (followup, followUp, deleted, dryRun) must be true or false in any case, or
//     empty; DHIS2 reads anything else as false, which would silently keep a value the
//     sender meant to delete.
//   - JSON must be valid UTF-8 without lone surrogate escapes; CSV fields must be UTF-8.
//   - A JSON header field that follows more than Options.MaxHeldValues data values is an
//     error rather than being applied to some values only (see DecodeJSON).
//   - The header key "completedDate" (sic, in DHIS2's own e2e fixture) is ignored, as DHIS2
//     ignores it.
//   - CSV columns are mapped by name when the header row names them (DHIS2 2.43), and by
//     position otherwise (2.42), so both generations' files and analytics CSV read right.
//   - DetectFormat accepts text/csv like application/csv and sniffs a body without a
//     useful Content-Type (DetectAsDHIS2 does neither).
//   - The import strategy may be written strategy or importStrategy in JSON and XML, in
//     any case (DHIS2's JSON reads strategy, its XML importStrategy, by exact name).
//   - Zip bodies, which DHIS2 unpacks, are refused: they cannot be streamed.
//   - JSON fields that take a type error (an object where a string belongs, "maybe" for
//     a boolean) end the parse with that error, as a mapping error ends a DHIS2 import;
//     in XML and CSV, where DHIS2 reads a bad boolean as false, the value alone is
//     refused (see above). Validation problems found by the sink (a missing org unit, a
//     bad period) are collected by the transform.Batcher and do not stop it.
package dvs
