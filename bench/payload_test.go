package bench

import (
	"errors"
	"io"
	"testing"

	"github.com/tally-hmis/tally/adapters/adx"
	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/transform"
)

type counter struct{ values int }

func (c *counter) Group(transform.Group) error                         { return nil }
func (c *counter) Value(*transform.DataValue, transform.Locator) error { c.values++; return nil }

// TestPayloadsParse proves every generated format is valid input for Tally's own parsers
// and holds exactly the number of values asked for.
func TestPayloadsParse(t *testing.T) {
	for _, f := range Formats {
		t.Run(f, func(t *testing.T) {
			r, _, err := Payload(f, 77, 1234)
			if err != nil {
				t.Fatal(err)
			}
			c := &counter{}
			switch f {
			case "json", "cht":
				err = dvs.DecodeJSON(r, c, dvs.Options{})
			case "csv":
				err = dvs.DecodeCSV(r, c, dvs.CSVOptions{})
			case "adx":
				err = adx.Decode(r, c, adx.Options{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.values != 1234 {
				t.Fatalf("%d values, want 1234", c.values)
			}
		})
	}
	if _, _, err := Payload("pdf", 0, 1); err == nil {
		t.Error("want an error for an unknown format")
	}
	r, _, _ := Payload("json", 0, 0)
	if b, err := io.ReadAll(r); err != nil || string(b) != "{\"dataValues\":[]}\n" {
		t.Errorf("empty payload = %q, %v", b, errors.Unwrap(err))
	}
}
