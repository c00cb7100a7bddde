// Package delivery is the last stage of Tally's consume path: the configured DHIS2 targets
// and the workers that deliver to them. Targets holds each target's DHIS2 client, its
// slots (concurrency, which the OpenHIM console may change), its circuit breaker, rate
// limit and request size, and probes it; Deliverer runs one durable consumer per target on
// TALLY_DELIVER, posts each batch to /api/dataValueSets (request.go: a 413 halves the
// request, a deletion batch goes as 2.43 deletion scopes where the target reads them),
// records what the target made of it in the transaction log, dead-letters what it refused
// or what failed for good (deliver.go), and registers the complete data sets of a
// transaction once its last batch is delivered (completeness.go). A preview asks a target
// what a batch would change (compare.go).
//
// It runs on the pipeline's consume chain and retry policy and hands dead letters to the
// pipeline.DeadLetters it is given. It must not map, read payloads or serve HTTP.
package delivery
