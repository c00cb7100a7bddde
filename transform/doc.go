// Package transform holds Tally's canonical model — the DataValue and the Batch that every
// inbound adapter produces and every later stage consumes — together with what operates on
// it without knowing HTTP or NATS: validation, batching, the versioned binary encoding used
// on the stream, and the mapping seam that turns source identifiers into target ones.
package transform
