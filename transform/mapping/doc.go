// Package mapping is Tally's code-based mapping engine: it turns a source batch into the
// batch one DHIS2 target receives, with rules from the mappings: section of the
// configuration and the target's metadata. It knows neither HTTP nor NATS: the target's
// metadata comes through a MetadataProvider, and the mediator calls Engine.Map.
//
// # Configuration
//
// The mappings: section is a list of sets; a source names the one it uses with
// `mapping: <name>`. Rules are written inline or in CSV tables beside the configuration
// (implementers keep them in spreadsheets):
//
//	mappings:
//	  - name: tracker-to-hmis
//	    description: program indicators to the national HMIS
//	    source_id_scheme: CODE        # how rules name source items: UID, CODE, NAME, ATTRIBUTE:<uid>
//	    target_id_scheme: CODE        # how rules name target objects (default UID)
//	    org_units: {scheme: CODE}     # same (default) | {scheme: CODE|NAME|ATTRIBUTE:<uid>}
//	                                  # | {table: FILE.csv} | {map: {source-id: target-id}},
//	                                  # a table or map may add target_id_scheme
//	    periods: keep                 # keep (default) | rollup
//	    source_period_type: Monthly   # optional; lets Check compare with the data sets
//	    rules:
//	      - {source: PI_BCG_F_LT1, data_element: EPI_BCG, coc: F_LT1}
//	      - {source: PI_MAL_TREATED, data_element: MAL_TREATED, aoc: GOV, data_set: MAL_MONTHLY}
//	      - {source: household-visits, data_element: CHW_HOUSEHOLD_VISITS, scale: 1, round: 0}
//	    tables: [mappings/pi-to-epi.csv]
//
// A rule matches a source item by its id (source) and, optionally, its category option
// combo (source_coc); a rule with source_coc wins over one without. It yields the target
// data_element and, optionally, the coc, the aoc and the data_set. scale multiplies numeric
// values and round rounds them to that many decimals (halves away from zero), in exact
// decimal arithmetic. A table has a header row naming any of the columns source,
// source_coc, data_element, coc, aoc, data_set, scale, round (source and data_element are
// required); lines starting with # are comments, and a header with semicolons and no comma
// makes ';' the delimiter. An org unit table has the columns source,target. Paths are
// relative to the configuration file. Every rule remembers its file and line, and every
// problem is reported there ("tally.yaml:12", "mappings/pi-to-epi.csv:7").
//
// The source's own settings choose what happens to values no rule names (unmapped: drop
// and report them, the default; pass them through with their ids read as the target's; or
// reject the batch) and to two values that map to one target key in a batch (duplicates:
// reject, the default, naming both; sum; or last wins).
//
// # Mapping a value
//
// Source ids are compared as written. When a set declares source_id_scheme and the batch
// declares its data element scheme, the two must agree, or the batch is rejected: the
// engine does not translate source ids through the source's metadata (a source that sends
// UIDs while its rules use codes must be told to send codes, as DHIS2 analytics does with
// outputIdScheme=CODE).
//
// With target metadata, every id the engine writes is in the scheme the target is sent, its
// configured id_schemes (UID when none is configured), and the output batch's Schemes say
// so. The attribute option combo is written in the category option combo scheme, because
// DHIS2 reads it with that one. Org units are read as the target's, in the set's scheme
// (or, for org_units: same, the batch's), or through the set's table. The category option
// combo is the rule's; else the value's own, checked against the element's category combo;
// else the one whose options are the value's ADX categories; else the default, only when the
// element is not disaggregated. The attribute option combo is resolved the same way against
// the attribute combo of the data set (the rule's, or the only one holding the element).
// The output batch names a data set only when every value belongs to the same one, and keeps
// the source's complete date only then. Under unmapped: pass, a value whose ids the target
// does not know is dropped and reported, since DHIS2 would refuse it.
//
// periods: rollup sums values into the period of the target data set's type that DHIS2
// analytics would aggregate them into (monthly into quarterly, say). Only the values of one
// batch are added up: a quarter whose months arrive in different batches or payloads is
// delivered as partial sums that overwrite one another, so a source that rolls up must send
// all the parts of a period in one payload of at most batch_size values.
//
// A value a rule cannot be applied to — ADX categories that match no combo, a transform on
// a non-numeric value, a period that does not roll up, a rule that names an object the
// target does not have — rejects the batch with every such problem listed (RejectError,
// wrapping ErrRejected): the batch belongs in the dead-letter queue until the rule or the
// metadata is fixed, and is then replayed.
//
// Without a MetadataProvider the engine delivers rule ids as written, in target_id_scheme,
// and what needs metadata fails the values that need it.
//
// # Checking
//
// Sets.Check compares the rules with the live metadata of the targets they feed: unknown
// codes, data elements outside the rule's data set, combos outside the element's category
// combo or the data set's attribute combo, period types that do not fit, transforms on text
// elements, and rules that collide on one target key while a source rejects duplicates.
package mapping
