// Package mediator is the running Tally service: the HTTP API (ingest, DHIS2-compatible
// dataValueSets, admin, health and metrics), the mapper stage between TALLY_INGEST and
// TALLY_DELIVER, the delivery workers that post to DHIS2 targets, and the transaction log
// that records what happened to every payload.
//
// The order of work is fixed by one promise: a client is answered only after JetStream has
// acknowledged every batch of its payload, and from then on a crash loses nothing because
// every stage consumes from a durable stream and acknowledges only after its own output is
// stored.
package mediator
