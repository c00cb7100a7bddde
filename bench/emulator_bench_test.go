package bench

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// BenchmarkEmulatorImport measures the emulator sink's own import cost: 1000-value data
// value sets of the bench's universe, already in the target's codes, posted one at a time
// to the emulator as the e2e scenario's emulator sink runs it (validating store, DHIS2 2.40).
// The sink shares the cores with Tally and the script in every end-to-end run, so its cost
// bounds both.
func BenchmarkEmulatorImport(b *testing.B) {
	sim, err := dhis2test.New(dhis2test.WithVersion(sinkVersion), dhis2test.WithBasePath(""), dhis2test.WithMetadata(UniverseMetadata()))
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	const payloads = 200 // distinct keys, so that imports are creates as in a bench run
	bodies := make([][]byte, payloads)
	for i := range bodies {
		r, _, err := UniversePayload("json", i*1000, 1000)
		if err != nil {
			b.Fatal(err)
		}
		raw, err := io.ReadAll(r)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = bytes.ReplaceAll(raw, []byte("PI_DE_"), []byte("BENCH_DE_")) // what the bench's rules map
	}
	url := srv.URL + "/api/dataValueSets?dataElementIdScheme=CODE&orgUnitIdScheme=CODE&categoryOptionComboIdScheme=CODE"
	b.ResetTimer()
	for n := range b.N {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[n%payloads]))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(dhis2test.SampleUser, dhis2test.SamplePassword)
		res, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusConflict {
			b.Fatalf("import %d: %s", n, res.Status)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "values/s")
}
