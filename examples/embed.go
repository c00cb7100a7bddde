// Package examples holds the sample configuration and payloads of the Kalima scenario, so
// that the demo, the tests and the documentation use the same files.
package examples

import "embed"

// Payloads are the sample payloads under payloads/.
//
//go:embed payloads
var Payloads embed.FS
