package bench

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
)

// BenchmarkEmulatorImport measures the emulator sink's own import cost: 1000-value data
// value sets of the bench's universe, already in the target's codes, posted to the emulator
// as the e2e scenario's emulator sink runs it (validating store, DHIS2 2.40), by one client
// at a time (clients=1, as the script posts) or by four at once (clients=4, as Tally at its
// default concurrency posts). The sink shares the cores with Tally and the script in every
// end-to-end run, so its cost bounds both.
//
// Beside values/s it reports the process's CPU time per million values (CPU-s/M, from
// getrusage: the emulator and this benchmark's HTTP client together), so that the two
// ways of posting can be compared by the work they cause, not only by their speed.
func BenchmarkEmulatorImport(b *testing.B) {
	for _, clients := range []int{1, 4} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) { benchmarkEmulatorImport(b, clients) })
	}
}

func benchmarkEmulatorImport(b *testing.B, clients int) {
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
	post := func(n int) error {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[n%payloads]))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(dhis2test.SampleUser, dhis2test.SamplePassword)
		res, err := srv.Client().Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusConflict {
			return &statusError{n, res.Status}
		}
		return nil
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	cpu0 := processCPU()
	b.ResetTimer()
	for range clients {
		wg.Go(func() {
			for n := int(next.Add(1) - 1); n < b.N; n = int(next.Add(1) - 1) {
				if err := post(n); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	values := float64(1000 * b.N)
	b.ReportMetric(values/b.Elapsed().Seconds(), "values/s")
	b.ReportMetric((processCPU()-cpu0).Seconds()/values*1e6, "CPU-s/M")
}

type statusError struct {
	n      int
	status string
}

func (e *statusError) Error() string { return "import " + strconv.Itoa(e.n) + ": " + e.status }

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
