// Package stream is Tally's JetStream layer: it runs an embedded nats-server or connects to an
// external cluster, creates the streams and key-value buckets idempotently, and publishes with
// a bounded window of unacknowledged messages.
//
// Names (fixed by the design, relied on by operators):
//
//	TALLY_INGEST   tally.ingest.<source>   canonical batches as accepted, before mapping
//	TALLY_DELIVER  tally.deliver.<target>  mapped batches waiting for a target
//	TALLY_DLQ      tally.dlq.<target>      dead letters
//	tally_tx       KV: the transaction log
//	tally_state    KV: exchange state, target metadata, last delivered sets
package stream
