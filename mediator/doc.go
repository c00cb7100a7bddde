// Package mediator is the composition root of the running Tally service: its Options,
// New, Start, Stop and Run, and the wiring of the packages that do the work, in the order
// of the data flow (docs/architecture.md):
//
//	httpapi                                  the HTTP surface
//	ingest, dlq, exchange, openhim/outcome   what it calls
//	pipeline, delivery                       the consume path: mapper and delivery stages
//	txlog, stream                            the transaction log and JetStream
//
// It decodes the sections other packages own (CheckConfig), applies what an operator
// changes in the OpenHIM console, and builds every collector on one registry
// (NewMetrics). It must not do the work itself: no handler, no stage, no storage lives
// here, only the lifecycle — New provisions and validates without I/O, Start connects,
// builds what needs JetStream and starts it, Stop undoes what Start got to.
//
// The order of work is fixed by one promise: a client is answered only after JetStream has
// acknowledged every batch of its payload, and from then on a crash loses nothing because
// every stage consumes from a durable stream and acknowledges only after its own output is
// stored.
package mediator
