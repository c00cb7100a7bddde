package bench

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/transform"
)

// startSink runs a sink of kind inside the test and returns it with its control client.
func startSink(t *testing.T, kind string) (*SinkInstance, *sinkClient) {
	t.Helper()
	s, err := InProcessSink(context.Background(), SinkSpec{Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s, newSinkClient(s.URL)
}

// dhis2Client is Tally's own DHIS2 client pointed at a sink, so that the tests send what
// Tally sends and read the answer as Tally reads it.
func dhis2Client(t *testing.T, base string) *dhis2.Client {
	t.Helper()
	c, err := dhis2.New(dhis2.Config{BaseURL: base, Username: "admin", Password: "district"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// targetJSON is a data value set of the universe's values idx in the target's codes, as
// Tally delivers them after mapping; value overrides the expected value of an index.
func targetJSON(idx []int, value map[int]string) []byte {
	n := universeNames()
	var b strings.Builder
	b.WriteString(`{"dataValues":[`)
	for j, i := range idx {
		k := keyOf(i)
		v := expectedValue(i)
		if w, ok := value[i]; ok {
			v = w
		}
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"dataElement":"` + n.deCode[k.de] + `","period":"` + n.period[k.month] + `","orgUnit":"` + n.ouCode[k.ou] +
			`","categoryOptionCombo":"` + uComboCodes[k.coc] + `","value":"` + v + `"}`)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func span(lo, hi int, except ...int) []int {
	skip := map[int]bool{}
	for _, e := range except {
		skip[e] = true
	}
	var out []int
	for i := lo; i < hi; i++ {
		if !skip[i] {
			out = append(out, i)
		}
	}
	return out
}

// send posts values to a sink with Tally's DHIS2 client, id scheme CODE as Tally's bench
// target sends them.
func send(t *testing.T, c *dhis2.Client, body []byte) *dhis2.ImportResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := c.ImportDataValues(ctx, dhis2.Bytes(dhis2.ContentTypeJSON, body),
		dhis2.ImportOptions{Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return r
}

// verdict reads the sink's state for [start, start+n) and judges it.
func verdict(t *testing.T, sc *sinkClient, start, n int) Verification {
	t.Helper()
	st, err := sc.state(context.Background(), start, n)
	if err != nil {
		t.Fatal(err)
	}
	return Verify(st)
}

// forEachSink runs test against a fresh sink of each kind, with Tally's DHIS2 client.
func forEachSink(t *testing.T, test func(t *testing.T, c *dhis2.Client, sc *sinkClient)) {
	for _, kind := range SinkKinds {
		t.Run(kind, func(t *testing.T) {
			s, sc := startSink(t, kind)
			test(t, dhis2Client(t, s.URL), sc)
		})
	}
}

// failsNaming checks that a verdict fails with an error that says every part.
func failsNaming(t *testing.T, v Verification, parts ...string) {
	t.Helper()
	err := v.Err()
	if v.OK() || err == nil {
		t.Fatalf("verdict %+v passes", v)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}

// TestVerifyPasses: every value sent once, as sent, is a pass on both sinks.
func TestVerifyPasses(t *testing.T) {
	forEachSink(t, func(t *testing.T, c *dhis2.Client, sc *sinkClient) {
		if err := sc.reset(context.Background(), 200); err != nil {
			t.Fatal(err)
		}
		send(t, c, targetJSON(span(1000, 1100), nil))
		send(t, c, targetJSON(span(1100, 1200), nil))
		v := verdict(t, sc, 1000, 200)
		if err := v.Err(); err != nil || v.Arrived != 200 || v.Receipts != 200 {
			t.Fatalf("verdict %+v, err %v", v, err)
		}
		p, err := sc.progress(context.Background(), 0)
		if err != nil || !p.Reached || p.Receipts != 200 || p.ReachedAt == 0 {
			t.Fatalf("progress %+v, %v", p, err)
		}
	})
}

// TestVerifyFailsOnMissingValue: one value of the range never sent must fail the run and be
// named.
func TestVerifyFailsOnMissingValue(t *testing.T) {
	forEachSink(t, func(t *testing.T, c *dhis2.Client, sc *sinkClient) {
		send(t, c, targetJSON(span(0, 100, 37), nil))
		v := verdict(t, sc, 0, 100)
		if v.Missing.N != 1 || v.Duplicated.N != 0 || v.Arrived != 99 {
			t.Fatalf("verdict %+v", v)
		}
		failsNaming(t, v, "1 missing", universeNames().label(37))
	})
}

// TestVerifyFailsOnDuplicatedValue: a value delivered twice must fail the run, reported as
// a duplicate (not as missing), with its receipt count.
func TestVerifyFailsOnDuplicatedValue(t *testing.T) {
	forEachSink(t, func(t *testing.T, c *dhis2.Client, sc *sinkClient) {
		send(t, c, targetJSON(span(0, 100), nil))
		send(t, c, targetJSON([]int{42}, nil))
		v := verdict(t, sc, 0, 100)
		if v.Duplicated.N != 1 || v.Extra != 1 || v.Missing.N != 0 || v.Receipts != 101 {
			t.Fatalf("verdict %+v", v)
		}
		failsNaming(t, v, "1 duplicated", universeNames().label(42)+" ×2")
	})
}

// TestVerifyFailsOnUnexpectedAndWrongValues: a value the run did not send, and a value
// that arrived with another value, fail the run too.
func TestVerifyFailsOnUnexpectedAndWrongValues(t *testing.T) {
	forEachSink(t, func(t *testing.T, c *dhis2.Client, sc *sinkClient) {
		send(t, c, targetJSON(span(0, 11), map[int]string{5: "9999"}))
		v := verdict(t, sc, 0, 10)
		if v.Unexpected.N != 1 || v.WrongValue.N != 1 || v.Missing.N != 0 {
			t.Fatalf("verdict %+v", v)
		}
		failsNaming(t, v, "1 unexpected", universeNames().label(10), "1 with a wrong value", universeNames().label(5))
	})
}

// TestResetForgetsReceipts: a reset starts a new run from nothing.
func TestResetForgetsReceipts(t *testing.T) {
	forEachSink(t, func(t *testing.T, c *dhis2.Client, sc *sinkClient) {
		send(t, c, targetJSON(span(0, 10), nil))
		if err := sc.reset(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
		send(t, c, targetJSON(span(0, 10), nil))
		if v := verdict(t, sc, 0, 10); !v.OK() {
			t.Fatalf("after a reset: %v", v.Err())
		}
	})
}

// TestCountingSinkAnswersAsDHIS2 checks the counting sink's import summaries as Tally's
// client reads them, against DHIS2 2.40's rules (spec dhis2.md §1.4 outcome table: a new key
// is imported, the same value again is ignored as unchanged, as dhis2/dhis2-core's
// DefaultDataValueSetService.saveDataValueUpdate does; §1.5: an unknown data element
// is E7610 and the value is ignored; §2.2: WARNING is HTTP 409 on 2.38–2.42), and that values
// may be sent by UID as well as by code.
func TestCountingSinkAnswersAsDHIS2(t *testing.T) {
	s, _ := startSink(t, SinkCounting)
	c := dhis2Client(t, s.URL)
	r := send(t, c, targetJSON(span(0, 3), nil))
	if r.Status != dhis2.StatusSuccess || r.Counts.Imported != 3 || r.HTTPStatus != 200 {
		t.Fatalf("first import: %+v", r)
	}
	r = send(t, c, targetJSON(span(0, 3), nil))
	if r.Counts.Ignored != 3 || r.Counts.Imported != 0 {
		t.Fatalf("repeat: %+v", r.Counts)
	}
	bad := strings.Replace(string(targetJSON(span(3, 5), nil)), "BENCH_DE_03", "NO_SUCH_DE", 1)
	r = send(t, c, []byte(bad))
	if r.Status != dhis2.StatusWarning || r.HTTPStatus != 409 || r.Counts.Imported != 1 || r.Counts.Ignored != 1 ||
		len(r.Conflicts) != 1 || r.Conflicts[0].ErrorCode != "E7610" || len(r.Rejected) != 1 || r.Rejected[0] != 0 {
		t.Fatalf("unknown data element: %+v", r)
	}
	n := universeNames()
	k := keyOf(7)
	byUID := `{"dataValues":[{"dataElement":"` + n.deUID[k.de] + `","period":"` + n.period[k.month] + `","orgUnit":"` + n.ouUID[k.ou] +
		`","categoryOptionCombo":"` + n.cocUID[k.coc] + `","value":"` + expectedValue(7) + `"}]}`
	ctx := context.Background()
	r, err := c.ImportDataValues(ctx, dhis2.Bytes(dhis2.ContentTypeJSON, []byte(byUID)), dhis2.ImportOptions{})
	if err != nil {
		t.Fatalf("by UID: %v", err)
	}
	if r.Counts.Imported != 1 {
		t.Fatalf("by UID: %+v", r)
	}
	// What Tally reads from a target for mapping comes from the emulator's metadata API.
	md, err := c.FetchMappingMetadata(ctx, dhis2.ListOptions{})
	if err != nil || len(md.DataElements) != uElements || len(md.OrgUnits) != uOrgUnits+1 {
		t.Fatalf("metadata: %d data elements, %d org units, %v", len(md.DataElements), len(md.OrgUnits), err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// TestUniverseKeys: every index has its own key, and the key gives the index back.
func TestUniverseKeys(t *testing.T) {
	r := newResolver()
	n := r.names
	for _, i := range []int{0, 1, 79, 80, 399_999, 400_000, 12_345_678, UniverseSize - 1} {
		k := keyOf(i)
		got, p := r.resolve(n.deCode[k.de], n.period[k.month], n.ouCode[k.ou], uComboCodes[k.coc], "", [3]bool{true, true, true})
		if p != nil || got != i {
			t.Errorf("index %d: key %+v resolves to %d, %+v", i, k, got, p)
		}
		if byUID, p := r.resolve(n.deUID[k.de], n.period[k.month], n.ouUID[k.ou], n.cocUID[k.coc], "HllvX50cXC0", [3]bool{}); p != nil || byUID != i {
			t.Errorf("index %d by UID: %d, %+v", i, byUID, p)
		}
	}
	if _, p := r.resolve(n.deCode[0], "202501", n.ouCode[0], "F_LT1", "", [3]bool{true, true, true}); p == nil || p.code != "E7611" {
		t.Errorf("a period outside the universe: %+v", p)
	}
	if keyOf(UniverseSize+5) != keyOf(5) || strconv.Itoa(UniverseSize) != "48000000" {
		t.Error("the universe does not wrap at UniverseSize")
	}
}

// TestCountingSinkHoldsEachImport: with an import time, the counting sink answers no import
// sooner than that, one import at a time, so that concurrent requests take their sum; every
// value is still counted once.
func TestCountingSinkHoldsEachImport(t *testing.T) {
	const hold = 30 * time.Millisecond
	s, err := InProcessSink(context.Background(), SinkSpec{Kind: SinkCounting, ImportTime: hold})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	sc, c := newSinkClient(s.URL), dhis2Client(t, s.URL)
	if err := sc.reset(context.Background(), 30); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			body := dhis2.Bytes(dhis2.ContentTypeJSON, targetJSON(span(10*i, 10*i+10), nil))
			if _, err := c.ImportDataValues(context.Background(), body, dhis2.ImportOptions{Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(began); took < 3*hold {
		t.Errorf("three imports answered within %s, want at least %s (one at a time, %s each)", took, 3*hold, hold)
	}
	st, err := sc.state(context.Background(), 0, 30)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range st.Counts {
		if n != 1 {
			t.Errorf("value %d received %d times, want once", i, n)
		}
	}
	if st.Receipts != 30 {
		t.Errorf("%d receipts, want 30", st.Receipts)
	}
}
