package main

import "runtime/debug"

// The garbage collector's defaults (GOGC=100, no memory limit) suit a program whose heap
// is its working set. Tally's is not: its live heap is small (metadata, mapping tables, a
// few batches in flight), while every value passing through allocates short-lived
// strings and buffers, so at GOGC=100 the collector runs every few megabytes and was a
// fifth of Tally's CPU in the bench (BENCHMARKS.md). serve therefore lets the heap grow to
// five times the live heap between collections, and bounds it with a soft memory limit so
// that a large payload or backlog still stays small. An operator's GOGC or GOMEMLIMIT
// replaces the corresponding default.
const (
	serveGCPercent   = 400
	serveMemoryLimit = 96 << 20
)

// tuneGC applies serve's collector defaults where the environment sets none.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
}
