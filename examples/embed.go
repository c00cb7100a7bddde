// Package examples holds the sample configuration, mapping tables and payloads of the
// Kalima scenario, so that the demo, the tests and the documentation use the same files.
package examples

import "embed"

// Files are tally.yaml, exchanges.yaml, mappings/ and payloads/.
//
//go:embed tally.yaml exchanges.yaml mappings payloads
var Files embed.FS
