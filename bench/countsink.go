package bench

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/transform"
)

// countingSink is a DHIS2 import endpoint that does real work per value and nothing else:
// it decodes every value with Tally's own JSON decoder, resolves its key, checks its value
// and counts the receipt. It keeps one counter per universe value (48 MB), not a map of
// keys, so ten million values cost it no more memory than one.
type countingSink struct {
	api http.Handler // the emulator: metadata, system info, ping, authentication
	sim *dhis2test.Server
	res *resolver

	// importTime is how long each import takes at least, one at a time (SinkSpec.ImportTime);
	// slot is held for it.
	importTime time.Duration
	slot       sync.Mutex

	mu       sync.Mutex
	counts   []uint8
	receiptN int64
	unknown  Count
	wrong    Count
}

func newCountingSink(sim *dhis2test.Server) *countingSink {
	return &countingSink{api: sim.Handler(), sim: sim, res: newResolver(), counts: make([]uint8, UniverseSize)}
}

func (s *countingSink) close() { s.sim.Close() }

func (s *countingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && isImportPath(r.URL.Path) {
		s.importValues(w, r)
		return
	}
	s.api.ServeHTTP(w, r)
}

func (s *countingSink) receipts() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.receiptN
}

func (s *countingSink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
	s.receiptN, s.unknown, s.wrong = 0, Count{}, Count{}
}

func (s *countingSink) state(start, n int) *SinkState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &SinkState{Start: start, N: n, Counts: append([]byte(nil), s.counts[start:start+n]...), Receipts: s.receiptN,
		Unknown: s.unknown, WrongValue: s.wrong}
	in := int64(0)
	for _, c := range st.Counts {
		in += int64(c)
	}
	// Receipts of universe keys outside the range: whatever is neither in it nor unknown
	// (exact unless a counter saturated, which a passing run never reaches).
	outside := max(0, s.receiptN-s.unknown.N-in)
	for i, c := range s.counts {
		if len(st.Outside.Sample) == maxSample || int64(len(st.Outside.Sample)) == outside {
			break
		}
		if c > 0 && (i < start || i >= start+n) {
			st.Outside.add(s.res.names.label(i))
		}
	}
	st.Outside.N = outside
	return st
}

// receipt is one decoded value: its universe index, or the problem with its key.
type receipt struct {
	index   int
	deleted bool
	okValue bool
	problem *keyProblem
	label   string // the key as received, when it does not resolve
	at      int    // position in the payload
}

// collector is the dvs.Sink of one import: it resolves each value as it is decoded.
type collector struct {
	res    *resolver
	query  transform.IDSchemes
	byCode [3]bool
	got    []receipt
}

func (c *collector) Group(g transform.Group) error {
	s := c.query.Overlay(g.Schemes)
	code := func(f transform.IDScheme) bool { return f.Or(s.IDScheme) == transform.SchemeCode }
	c.byCode = [3]bool{code(s.DataElement), code(s.OrgUnit), code(s.CategoryOptionCombo)}
	return nil
}

func (c *collector) Value(v *transform.DataValue, _ transform.Locator) error {
	i, p := c.res.resolve(v.DataElement, v.Period, v.OrgUnit, v.CategoryOptionCombo, v.AttributeOptionCombo, c.byCode)
	rc := receipt{index: i, problem: p, deleted: v.Deleted, at: len(c.got)}
	if p == nil {
		rc.okValue = v.Value == expectedValue(i)
	} else {
		rc.label = v.DataElement + "/" + v.Period + "/" + v.OrgUnit + "/" + v.CategoryOptionCombo + "/" + v.AttributeOptionCombo
	}
	c.got = append(c.got, rc)
	return nil
}

// importValues serves POST /api/dataValueSets: JSON only (what Tally and the peer send).
func (s *countingSink) importValues(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != dhis2test.SampleUser || p != dhis2test.SamplePassword {
		writeWebMessage(w, http.StatusUnauthorized, "ERROR", "Unauthorized", nil)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeWebMessage(w, http.StatusUnsupportedMediaType, "ERROR",
			fmt.Sprintf("Content type '%s' not supported (the bench's counting sink reads JSON only)", r.Header.Get("Content-Type")), nil)
		return
	}
	var body io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			writeWebMessage(w, http.StatusBadRequest, "ERROR", "Could not read request body: "+err.Error(), nil)
			return
		}
		defer gz.Close()
		body = gz
	}
	q, err := querySchemes(r)
	if err != nil {
		writeImportSummary(w, failedSummary(err))
		return
	}
	c := &collector{res: s.res, query: q}
	// A dry run imports nothing (spec dhis2.md §1.2): it is answered but not counted. The
	// payload's own dryRun wins over the query's (§1.3).
	dry := strings.EqualFold(r.URL.Query().Get("dryRun"), "true")
	onHeader := func(h *dvs.Header) error {
		if h.DryRun != nil {
			dry = *h.DryRun
		}
		return nil
	}
	if err := dvs.DecodeJSON(body, c, dvs.Options{OnHeader: onHeader}); err != nil {
		// Malformed JSON: status ERROR, 409 on 2.38+ (spec dhis2.md §2.2).
		writeImportSummary(w, failedSummary(err))
		return
	}
	if !s.hold(r.Context()) {
		return // the client gave up; nothing was imported
	}
	writeImportSummary(w, s.count(c, dry))
}

// hold makes an import take importTime, one import at a time, as the store of a target that
// is the bottleneck would; false if ctx ended first.
func (s *countingSink) hold(ctx context.Context) bool {
	if s.importTime <= 0 {
		return true
	}
	s.slot.Lock()
	defer s.slot.Unlock()
	t := time.NewTimer(s.importTime)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// querySchemes reads the id-scheme parameters of an import.
func querySchemes(r *http.Request) (transform.IDSchemes, error) {
	q := r.URL.Query()
	var s transform.IDSchemes
	for _, p := range []struct {
		name string
		dst  *transform.IDScheme
	}{{"idScheme", &s.IDScheme}, {"dataElementIdScheme", &s.DataElement}, {"orgUnitIdScheme", &s.OrgUnit},
		{"categoryOptionComboIdScheme", &s.CategoryOptionCombo}} {
		v, err := transform.ParseIDScheme(q.Get(p.name))
		if err != nil {
			return s, fmt.Errorf("%s: %w", p.name, err)
		}
		*p.dst = v
	}
	return s, nil
}

// count records an import's receipts and builds its summary as DHIS2 2.38–2.42 counts
// (spec dhis2.md §1.4): a new key is imported; a key seen before with the same value is
// ignored (no write), with another value updated; a deletion is deleted; a value whose key
// does not resolve is ignored with a conflict naming the identifier (§1.5), merged by
// error code and object with its indexes (§2.3). A dry run is summarised the same way and
// leaves no receipt. Confirmed in dhis2/dhis2-core DefaultDataValueSetService.java:
// saveDataValueUpdate counts a value ignored when dataValueUpdateShouldBeIgnored (value,
// comment and follow-up unchanged), and createDataValueSetImportContext lets the payload's
// dryRun win over the query's.
func (s *countingSink) count(c *collector, dry bool) *importSummary {
	sum := &importSummary{Status: "SUCCESS", Description: "Import process completed successfully", DataSetComplete: "false"}
	conflicts := map[string]*conflict{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rc := range c.got {
		if rc.problem != nil {
			sum.Count.Ignored++
			addConflict(sum, conflicts, rc)
			if !dry {
				s.receiptN++
				s.unknown.add(rc.label)
			}
			continue
		}
		prev := s.counts[rc.index]
		if !dry {
			s.receiptN++
			if prev < 255 {
				s.counts[rc.index]++
			}
			if !rc.okValue {
				s.wrong.add(s.res.names.label(rc.index))
			}
		}
		switch {
		case rc.deleted:
			sum.Count.Deleted++
		case prev == 0:
			sum.Count.Imported++
		case rc.okValue:
			sum.Count.Ignored++ // the same value again: unchanged
		default:
			sum.Count.Updated++
		}
	}
	if len(sum.Conflicts) > 0 {
		sum.Status = "WARNING"
	}
	return sum
}

// maxConflicts bounds the distinct conflicts one summary lists.
const maxConflicts = 100

func addConflict(sum *importSummary, seen map[string]*conflict, rc receipt) {
	p := rc.problem
	k := p.code + "\x00" + p.object
	if c, ok := seen[k]; ok {
		c.Indexes = append(c.Indexes, rc.at)
		sum.Rejected = append(sum.Rejected, rc.at)
		return
	}
	if len(sum.Conflicts) >= maxConflicts {
		sum.Rejected = append(sum.Rejected, rc.at)
		return
	}
	msg := map[string]string{"E7610": "Data element not found or not accessible", "E7611": "Period not valid",
		"E7612": "Organisation unit not found or not accessible", "E7613": "Category option combo not found or not accessible for writing data",
		"E7615": "Attribute option combo not found or not accessible for writing data"}[p.code]
	// objects are keyed by schema singular names (spec dhis2.md §2.3).
	kind := map[string]string{"orgUnit": "organisationUnit", "attributeOptionCombo": "categoryOptionCombo"}[p.property]
	if kind == "" {
		kind = p.property
	}
	c := &conflict{Object: p.object, Objects: map[string]string{kind: p.object}, Value: fmt.Sprintf("%s: `%s`", msg, p.object),
		ErrorCode: p.code, Property: p.property, Indexes: []int{rc.at}}
	seen[k] = c
	sum.Conflicts = append(sum.Conflicts, c)
	sum.Rejected = append(sum.Rejected, rc.at)
}
