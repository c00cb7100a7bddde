package adx

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// FuzzDecode checks that Decode never panics and stays within its limits on any input;
// that whatever the scanner accepts, encoding/xml accepts too and reads the same (for
// ASCII input, where both implement the same XML); and that accepted messages survive
// Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"", "v2.43"} {
		paths, _ := filepath.Glob(filepath.Join(fixtureDir, dir, "*.xml"))
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	for _, s := range []string{
		doc(`<group orgUnit="KL_N_F1" period="2024-01-01/P1M" dataSet="MAL_MONTHLY" FUNDING="GOV">
  <dataValue dataElement="MAL_CONFIRMED" SEX="F" AGE="LT1" value="3"/>
  <dataValue dataElement="MAL_REMARKS" value="0" comment="c" followup="true"><annotation>t &amp; <![CDATA[x]]></annotation></dataValue>
</group>`),
		doc(`<group orgUnit="O" period="2024-01-01/P7D" attributeOptionCombo="A" comment="g"><dataValue dataElement="D" value="" deleted="true" categoryOptionCombo="C"/></group>`),
		"<?xml version=\"1.0\"?>\r\n<x:adx xmlns:x=\"urn:ihe:qrph:adx:2015\"><x:group orgUnit='O&#x55;' period='2017-11-01/P6M'><x:dataValue dataElement='D' value='a&#9;b\nc'/></x:group></x:adx>",
		`<!DOCTYPE adx [<!ENTITY a "b">]><adx/>`,
		doc(`<group orgUnit="O" period="2024-01-02/P7D"/>`),
	} {
		f.Add([]byte(s))
	}
	limits := Limits{MaxDepth: 12, MaxAttrs: 32, MaxAttrBytes: 1 << 10, MaxTextBytes: 1 << 10, MaxTagBytes: 16 << 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{Limits: limits}
		rec := &recorder{}
		err := Decode(bytes.NewReader(data), rec, opts)
		var ie *transform.InputError
		if err != nil && !errors.As(err, &ie) {
			t.Fatalf("error that is not an input error: %v", err)
		}
		if err != nil {
			if ie.Line < 1 || ie.Column < 0 || ie.Expected == "" {
				t.Fatalf("error without a place: %+v", *ie)
			}
			return
		}
		for _, e := range rec.rejects {
			if e.Index < 0 || e.Line < 1 || !strings.HasPrefix(e.Path, "/adx/group[") {
				t.Fatalf("reject without a place: %+v", *e)
			}
		}

		if isASCII(data) {
			std := &recorder{}
			if err := decodeStd(bytes.NewReader(data), std, opts); err != nil {
				t.Fatalf("scanner accepted what encoding/xml refuses: %v", err)
			}
			if d := diffValues(normalized(rec.values), normalized(std.values)); d != "" {
				t.Fatalf("scanner and encoding/xml disagree: %s", d)
			}
			if len(rec.rejects) != len(std.rejects) || len(rec.groups) != len(std.groups) {
				t.Fatalf("scanner: %d groups, %d rejects; encoding/xml: %d groups, %d rejects",
					len(rec.groups), len(rec.rejects), len(std.groups), len(std.rejects))
			}
		}

		if len(rec.rejects) > 0 {
			return
		}
		out := encodeRecorded(t, rec, EncodeOptions{})
		again := &recorder{}
		if err := Decode(bytes.NewReader(out), again, opts); err != nil || len(again.rejects) > 0 {
			t.Fatalf("encoded output does not decode: %v %v\n%s", err, again.rejects, out)
		}
		if d := diffValues(rec.values, again.values); d != "" {
			t.Fatalf("round trip: %s\n%s", d, out)
		}
		for i := range rec.values {
			g, h := rec.groups[rec.groupOf[i]], again.groups[again.groupOf[i]]
			if g != h {
				t.Fatalf("value %d: group %+v became %+v", i, g, h)
			}
		}
	})
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// normalized maps tabs and line ends to spaces in every string, because encoding/xml does
// not normalise attribute values as XML requires and the scanner does.
func normalized(vs []transform.DataValue) []transform.DataValue {
	r := strings.NewReplacer("\r\n", " ", "\t", " ", "\n", " ", "\r", " ")
	out := make([]transform.DataValue, len(vs))
	for i, v := range vs {
		for _, s := range []*string{&v.DataElement, &v.Period, &v.OrgUnit, &v.CategoryOptionCombo,
			&v.AttributeOptionCombo, &v.Value, &v.Comment, &v.StoredBy} {
			*s = r.Replace(*s)
		}
		norm := func(cs []transform.CategoryOption) []transform.CategoryOption {
			var out []transform.CategoryOption
			for _, c := range cs {
				out = append(out, transform.CategoryOption{Category: c.Category, Option: r.Replace(c.Option)})
			}
			return out
		}
		v.Categories, v.Attributes = norm(v.Categories), norm(v.Attributes)
		out[i] = v
	}
	return out
}

// TestFuzzCorpusRegressions replays inputs the fuzzer once tripped on.
func TestFuzzCorpusRegressions(t *testing.T) {
	for i, in := range []string{
		"<adx/>",
		"<adx></adx >",
		"<adx><group orgUnit='0' period='0001-01-01/P1D'/></adx>",
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			rec := &recorder{}
			if err := Decode(strings.NewReader(in), rec, Options{}); err != nil {
				t.Logf("refused: %v", err)
			}
		})
	}
}
