// Package mapping is Tally's code-based mapping engine: it turns a source batch into the
// batch one DHIS2 target receives, with rules from the mappings: section of the
// configuration and the target's metadata. It knows neither HTTP nor NATS nor the
// configuration file: the caller decodes each entry of the mappings: section into a
// SetConfig and compiles them (Compile, Sets.Add), describes sources and targets as Source
// and Target, and gives the targets' metadata (transform/metadata) through a
// MetadataProvider; the mediator calls Engine.MapWith.
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
// The source's own settings choose what happens to values no rule names, unmapped: drop
// (the default: left out and reported in Mapped.Unmapped), pass (their ids are read as the
// target's; one the target does not know is left out and reported the same way) or reject
// (each such value is refused, see below); what happens to two values that map to one
// target key, duplicates: reject (the default: both are refused, unless they are
// identical), sum or last (the last wins), reported in Mapped.Duplicates; and which values
// to keep by their org unit (see Org units).
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
// (or, for org_units: same, the batch's), or through the set's table.
//
// A value's data set is the rule's data_set; else the one the value or its batch names (an
// ADX group's dataSet, looked up in the batch's data set scheme), when the target has it
// and it holds the element; else the only data set holding the element. It decides the
// element's category combo (a data set may override it), the attribute combo and the
// period type, as DHIS2 decides them for an ADX group (spec adx.md §7.1). The category
// option combo is the rule's; else the value's own, checked against the element's category
// combo; else the one whose options are the value's ADX categories; else the default, only
// when the element is not disaggregated. The attribute option combo is the rule's; else the
// value's own, honoured as given (translated to the output scheme) and checked against the
// data set's attribute combo, or, when the element's data sets disagree and none was
// named, against theirs; else the one the value's ADX attributes name in the data set's
// attribute combo; else the default, only when that combo is the default. The output batch
// names a data set only when every value belongs to the same one, and keeps the source's
// complete date only then.
//
// With the target's DHIS2 release (Metadata.SystemRelease), a period of a type the release
// does not have (QuarterlyNov before 2.41, FinancialSep before 2.42, WeeklyFriday,
// FinancialFeb and FinancialAug before 2.43) is refused.
//
// # Refusals
//
// A value that cannot be delivered as written is refused on its own, with the field, the
// reason and DHIS2's error code where DHIS2 has one (Mapped.Refused): no rule under
// unmapped: reject (E7610 data element, E7612 org unit, E7613 option combo), a rule naming
// what the target lacks or outside the element's combos or data set (E7610, E7613/E7615,
// E7633, E7634/E7635), ADX categories or attributes matching no combo (E7613/E7615), a
// disaggregation or attribute combo that is needed and not given (E7630/E7631), a scale or
// a sum on a non-number (E7619), a period that does not roll up or the release lacks
// (E7632, E7611), a duplicate under duplicates: reject (E8128). The rest of the batch is
// mapped and delivered; the mediator dead-letters the refused values, to be replayed once
// the rule or the metadata is fixed. Only what concerns the whole batch is an error
// (RejectError, wrapping ErrRejected): a batch whose declared data element scheme
// contradicts the set's source_id_scheme. That is Engine.MapWith; Engine.Map keeps the
// whole-batch contract for callers that do not read Mapped.Refused, and rejects a batch
// with any refused value.
//
// # Org units
//
// A source's org_units: {keep: all|assigned, level: N} looks at each value's org unit in
// the target once mapped. With keep: all (the default), a value whose org unit is not
// assigned to its data set (CHT exports rows for a health worker's ancestors too, so a
// district's value lands beside its facilities') is delivered with a warning
// (Mapped.Warnings, E7636): DHIS2 2.38–2.42 stores it unless its strict checks are on, and
// 2.43 refuses the data set's whole group (E8022). keep: assigned leaves such values out,
// reported as unmapped; level: N leaves out values of org units at other levels. Both need
// metadata read with the data sets' org units and the org units' levels (MetadataRequests
// asks for them); metadata cached before that is used without the filter, and the batch
// warns once.
//
// # Roll-up
//
// periods: rollup sums values into the period of the target data set's type that DHIS2
// analytics would aggregate them into (monthly into quarterly, say). Within a batch, the
// values of one constituent period are first settled by the duplicates policy, then the
// periods are added up. Given a RollupStore (Options.Rollup), a rolled value is the sum of
// every constituent period received so far, across batches and payloads: a constituent
// sent again replaces its earlier contribution, a deleted one removes it (see RollupStore
// for the keys and the records). Without one, only the values of one batch are added up,
// and a quarter whose months arrive in different payloads is delivered as partial sums
// that overwrite one another.
//
// Without a MetadataProvider the engine delivers rule ids as written, in target_id_scheme,
// and what needs metadata fails the values that need it.
//
// # Without a mapping set
//
// A source without a mapping set keeps its ids, and its duplicates policy still applies to
// values with the same key (ADX disaggregations key by their category=option pairs). Its
// values are not checked against the target: DHIS2 does that.
//
// # Across the batches of a payload
//
// A payload is split into batches of at most batch_size values. Given PayloadKeys
// (Options.Payload), kept by the caller for one payload and target, the duplicates policy
// also reaches the payload's earlier batches.
//
// # Checking
//
// Sets.Check compares the rules with the live metadata of the targets they feed: unknown
// codes, data elements outside the rule's data set, combos outside the element's category
// combo or the data set's attribute combo, period types that do not fit, transforms on text
// elements, and rules that collide on one target key while a source rejects duplicates.
// For ADX sources, CheckADX adds what keeps their categories from resolving: category
// codes that are not XML names, options without an id in the source's scheme, and option
// combos DHIS2 has not generated.
package mapping
