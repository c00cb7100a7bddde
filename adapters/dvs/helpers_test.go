package dvs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/transform"
)

// conformanceDir holds the shared fixtures; CI has the same layout.
const conformanceDir = "../../../shared/conformance"

// fixture returns the path of a conformance fixture, skipping the test when the corpus is
// not checked out.
func fixture(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(conformanceDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("conformance corpus not available: %v", err)
	}
	return p
}

// recSink records what a decoder delivers, including each value's position.
type recSink struct {
	groups []transform.Group
	values []transform.DataValue
	pos    []transform.Pos
}

func (s *recSink) Group(g transform.Group) error {
	s.groups = append(s.groups, g)
	return nil
}

func (s *recSink) Value(v *transform.DataValue, at transform.Locator) error {
	if len(s.groups) == 0 {
		return errors.New("value before group")
	}
	s.values = append(s.values, *v)
	s.pos = append(s.pos, at.Pos())
	return nil
}

type decodeFunc func(r *strings.Reader, s transform.Sink) error

func jsonDecode(opts Options) decodeFunc {
	return func(r *strings.Reader, s transform.Sink) error { return DecodeJSON(r, s, opts) }
}

func xmlDecode(opts Options) decodeFunc {
	return func(r *strings.Reader, s transform.Sink) error { return DecodeXML(r, s, opts) }
}

func csvDecode(opts CSVOptions) decodeFunc {
	return func(r *strings.Reader, s transform.Sink) error { return DecodeCSV(r, s, opts) }
}

// batchRun feeds a payload through a real Batcher and returns the values of every batch
// it emitted and the problems it collected.
type batchRun struct {
	batches []transform.Batch
	values  []transform.DataValue
	errs    *transform.InputErrors
	report  transform.ValueReport
}

func runBatcher(t testing.TB, decode decodeFunc, payload string, maxValues int) (batchRun, error) {
	t.Helper()
	return runBatcherWith(t, decode, payload, transform.BatcherConfig{MaxValues: maxValues})
}

// runBatcherWith is runBatcher with the Batcher configured by cfg (its Emit is replaced).
func runBatcherWith(t testing.TB, decode decodeFunc, payload string, cfg transform.BatcherConfig) (batchRun, error) {
	t.Helper()
	var run batchRun
	cfg.Source, cfg.TxID, cfg.Received = "test", "tx", time.Unix(0, 0)
	cfg.Emit = func(b *transform.Batch) error {
		cp := *b
		cp.Values = append([]transform.DataValue(nil), b.Values...)
		run.batches = append(run.batches, cp)
		run.values = append(run.values, cp.Values...)
		return nil
	}
	b := transform.NewBatcher(cfg)
	if err := decode(strings.NewReader(payload), b); err != nil {
		return run, err
	}
	if err := b.Close(); err != nil {
		list, ok := transform.AsInputErrors(err)
		if !ok {
			t.Fatalf("Close: %v", err)
		}
		run.errs = list
	}
	run.report = b.Report()
	return run, nil
}

// inputError asserts that err is an *transform.InputError and returns it.
func inputError(t testing.TB, err error) *transform.InputError {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var ie *transform.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *InputError", err, err)
	}
	return ie
}

func readFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
