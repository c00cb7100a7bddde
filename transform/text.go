package transform

import "strings"

// ClipText is s on one line (each run of white space one space), cut to at most n bytes on
// a UTF-8 boundary, with "…" after a cut: for error texts kept in records, headers and
// messages, which must stay bounded.
func ClipText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
