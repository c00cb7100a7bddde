package dvs

import (
	"testing"
	"unicode/utf8"
)

// runeCount must agree with utf8.RuneCount on valid UTF-8 of every length and alignment,
// so that the columns of error messages do not move.
func TestRuneCountAgreesWithUTF8(t *testing.T) {
	text := []byte(`{"dataElement":"Nyumba zilizotembelewa","comment":"Vérifié – 訪問 ✓ 🙂","value":"12"}`)
	for from := range text {
		for to := from; to <= len(text); to++ {
			seg := text[from:to]
			if !utf8.Valid(seg) {
				continue
			}
			if got, want := runeCount(seg), utf8.RuneCount(seg); got != want {
				t.Fatalf("runeCount(%q) = %d, want %d", seg, got, want)
			}
		}
	}
}

func FuzzRuneCount(f *testing.F) {
	f.Add([]byte("plain ASCII text, longer than one word"))
	f.Add([]byte("Kalima – Région Nord ✓"))
	f.Fuzz(func(t *testing.T, p []byte) {
		if !utf8.Valid(p) {
			t.Skip()
		}
		if got, want := runeCount(p), utf8.RuneCount(p); got != want {
			t.Fatalf("runeCount(%q) = %d, want %d", p, got, want)
		}
	})
}
