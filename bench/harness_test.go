package bench

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHarnessRuns drives the whole harness at a small size against an in-process Tally, so
// that `tally bench` cannot rot: every measurement must produce a figure.
func TestHarnessRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the full pipeline")
	}
	python, _ := exec.LookPath("python3")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Options{Start: InProcess, Values: 5000, Rules: 10, Rate: 20, Duration: time.Second,
		Python: python, PeerScript: "peer.py"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Formats {
		if r.Ingest[f] <= 0 || r.Decode[f] <= 0 {
			t.Errorf("%s: ingest %v, decode %v", f, r.Ingest[f], r.Decode[f])
		}
	}
	if r.EndToEnd <= 0 || r.LatencyN < 10 || r.LatencyP99 < r.LatencyP50 {
		t.Errorf("report = %+v", r)
	}
	if python != "" && r.Peer <= 0 {
		t.Errorf("peer: %v %s", r.Peer, r.PeerErr)
	}
	var md bytes.Buffer
	r.Markdown(&md)
	if !strings.Contains(md.String(), "| json |") || !strings.Contains(md.String(), "end to end") {
		t.Errorf("markdown:\n%s", md.String())
	}
}
