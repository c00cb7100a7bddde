package adx

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/transform"
)

// fixtureDir is the shared conformance corpus, relative to this package.
const fixtureDir = "../../../shared/conformance/adx"

type fixture struct {
	name string // relative to fixtureDir
	data []byte
}

// fixtureFiles reads every ADX fixture, skipping the test when the corpus is absent.
func fixtureFiles(tb testing.TB) []fixture {
	tb.Helper()
	var out []fixture
	for _, dir := range []string{"", "v2.43"} {
		entries, err := os.ReadDir(filepath.Join(fixtureDir, dir))
		if os.IsNotExist(err) {
			if dir == "" {
				tb.Skipf("conformance corpus not found at %s", fixtureDir)
			}
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".xml") {
				continue
			}
			name := filepath.Join(dir, e.Name())
			data, err := os.ReadFile(filepath.Join(fixtureDir, name))
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, fixture{name: filepath.ToSlash(name), data: data})
		}
	}
	if len(out) == 0 {
		tb.Skipf("no ADX fixtures in %s", fixtureDir)
	}
	return out
}

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if os.IsNotExist(err) {
		tb.Skipf("fixture %s not found", name)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

type decodeFunc func(io.Reader, transform.Sink, Options) error

func scannerDecode(r io.Reader, s transform.Sink, o Options) error { return Decode(r, s, o) }

// recorder is a Sink that keeps deep copies of what it is given.
type recorder struct {
	groups  []transform.Group
	values  []transform.DataValue
	groupOf []int // index into groups of each value
	rejects []*transform.InputError
	locs    []transform.Pos // Locator answers, per value
	askPos  bool
}

func (r *recorder) Group(g transform.Group) error {
	r.groups = append(r.groups, g)
	return nil
}

func (r *recorder) Value(v *transform.DataValue, at transform.Locator) error {
	c := *v
	c.Categories = slices.Clone(v.Categories)
	c.Attributes = slices.Clone(v.Attributes)
	r.values = append(r.values, c)
	r.groupOf = append(r.groupOf, len(r.groups)-1)
	if r.askPos {
		r.locs = append(r.locs, at.Pos())
	}
	return nil
}

func (r *recorder) Reject(e *transform.InputError, at transform.Locator) error {
	r.rejects = append(r.rejects, e)
	return nil
}

// decodeAll decodes data and fails the test on any error or rejected value.
func decodeAll(tb testing.TB, fn decodeFunc, data []byte, opts Options) *recorder {
	tb.Helper()
	rec := &recorder{}
	if err := fn(bytes.NewReader(data), rec, opts); err != nil {
		tb.Fatalf("decode: %v", err)
	}
	for _, e := range rec.rejects {
		tb.Errorf("rejected: %v", e)
	}
	if tb.Failed() {
		tb.FailNow()
	}
	return rec
}

// diffValues compares values ignoring Index.
func diffValues(want, got []transform.DataValue) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d values, want %d\ngot:  %+v\nwant: %+v", len(got), len(want), got, want)
	}
	for i := range want {
		w, g := want[i], got[i]
		w.Index, g.Index = 0, 0
		if !reflect.DeepEqual(w, g) {
			return fmt.Sprintf("value %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
	return ""
}

func cats(kv ...string) []transform.CategoryOption {
	var out []transform.CategoryOption
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, transform.CategoryOption{Category: kv[i], Option: kv[i+1]})
	}
	return out
}

func isText(names ...string) func(string) bool {
	return func(de string) bool { return slices.Contains(names, de) }
}
