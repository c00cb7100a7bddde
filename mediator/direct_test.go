package mediator_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/mediator/stream"
	"github.com/tally-hmis/tally/mediator/txlog"
)

// Mapping at ingest (pipeline.Direct): a payload whose batches map plainly is stored
// mapped, straight into TALLY_DELIVER, one message per batch and target; the mapper stage
// sees none of it. These tests run the service as `tally serve` runs it and tell where each
// batch was mapped by tally_mapper_batches_total.

const directSources = summingSource + `  - name: strict
    format: json
    auth: {tokens: [strict-token-0123456789]}
    id_schemes: {id_scheme: CODE}
    mapping: chw
    unmapped: reject
    duplicates: sum
    batch_size: 2
`

// chwMapping is a mapping set of two rules from the CHT's codes to the HMIS's.
const chwMapping = `mappings:
  - name: chw
    source_id_scheme: CODE
    target_id_scheme: CODE
    org_units: {scheme: CODE}
    rules:
      - {source: visits, data_element: CHW_HOUSEHOLD_VISITS}
      - {source: u5, data_element: CHW_U5_ASSESSMENTS}
`

// send posts a payload to a source and waits until its transaction reaches status want.
func (h *harness) send(source, token, body, want string) map[string]any {
	h.t.Helper()
	code, resp := h.post("/ingest/"+source, "application/json", "Bearer "+token, []byte(body))
	if code != http.StatusAccepted {
		h.t.Fatalf("ingest to %s: HTTP %d %v", source, code, resp)
	}
	return h.waitStatus(resp["transaction"].(string), want)
}

// stages reads tally_mapper_batches_total of a source: batches mapped at ingest and by the
// mapper stage.
func stages(t *testing.T, h *harness, source string) [2]float64 {
	t.Helper()
	var n [2]float64
	for i, stage := range []string{"ingest", "mapper"} {
		n[i] = metric(t, h, `tally_mapper_batches_total{source="`+source+`",stage="`+stage+`"}`)
	}
	return n
}

// wantStages checks the batches mapped at ingest and by the mapper stage since before.
func wantStages(t *testing.T, h *harness, source string, before [2]float64, atIngest, byStage float64) {
	t.Helper()
	now := stages(t, h, source)
	if got := [2]float64{now[0] - before[0], now[1] - before[1]}; got != [2]float64{atIngest, byStage} {
		t.Errorf("batches mapped at ingest and by the mapper stage: %v, want %v", got, [2]float64{atIngest, byStage})
	}
}

// TestPlainBatchesAreMappedAtIngest: once the target's metadata and release are at hand
// (the first payload has the mapper stage read them), every batch of a payload is mapped at
// ingest, each under its own message id (all of them arrive, each once), with the source's
// duplicates policy across the batches (a key in the first and the third batch is summed).
func TestPlainBatchesAreMappedAtIngest(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), directSources, chwMapping)
	h.send("summing", "summing-token-0123456789",
		`{"period":"202405","dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_S_F1","value":"1"}]}`, txlog.TxDelivered)
	before := stages(t, h, "summing")
	imports := emu.ImportRequests()

	h.send("summing", "summing-token-0123456789", summingPayload, txlog.TxDelivered)

	wantStages(t, h, "summing", before, 3, 0) // every batch at ingest
	for _, c := range []struct{ de, ou, want string }{
		{"CHW_HOUSEHOLD_VISITS", "KL_N_F1", "4"}, // 1 + 3, across the first and the third batch
		{"CHW_HOUSEHOLD_VISITS", "KL_N_F2", "2"},
		{"CHW_U5_ASSESSMENTS", "KL_N_F1", "5"},
		{"CHW_U5_ASSESSMENTS", "KL_N_F2", "6"},
	} {
		if v, ok := emu.Lookup(c.de, "202406", c.ou, "", ""); !ok || v.Value != c.want {
			t.Errorf("%s at %s = %q, %v; want %s", c.de, c.ou, v.Value, ok, c.want)
		}
	}
	// Three batches, three imports: a batch stored under another's message id would have
	// been dropped as its duplicate, and one stored twice sent twice.
	if n := emu.ImportRequests() - imports; n != 3 {
		t.Errorf("%d imports, want one per batch (3)", n)
	}
}

// TestABatchLeftToTheMapperStageKeepsThePayloadsDuplicatesPolicy: a batch that does not map
// plainly (mapping refuses one of its values) goes to the mapper stage with the rest of its
// payload. The keys the first batch was mapped to at ingest go with them, so the third
// batch's value on a key of the first is still summed, and the refused value becomes a
// dead letter as the mapper stage makes it.
func TestABatchLeftToTheMapperStageKeepsThePayloadsDuplicatesPolicy(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	h := startTallyCfg(t, emu.URL, t.TempDir(), directSources, chwMapping)
	// The first payload has the mapper stage read the target's metadata.
	h.send("strict", "strict-token-0123456789",
		`{"period":"202405","orgUnit":"KL_S_F1","dataValues":[{"dataElement":"visits","value":"10"}]}`, txlog.TxDelivered)
	before := stages(t, h, "strict")

	h.send("strict", "strict-token-0123456789", `{"period":"202406","dataValues":[
	  {"dataElement":"visits","orgUnit":"KL_N_F1","value":"1"},{"dataElement":"u5","orgUnit":"KL_N_F1","value":"5"},
	  {"dataElement":"pregnancies","orgUnit":"KL_N_F1","value":"2"},{"dataElement":"u5","orgUnit":"KL_N_F2","value":"6"},
	  {"dataElement":"visits","orgUnit":"KL_N_F1","value":"3"}]}`, txlog.TxPartiallyDelivered)

	wantStages(t, h, "strict", before, 1, 2) // the first at ingest, the other two by the stage
	if v, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202406", "KL_N_F1", "", ""); !ok || v.Value != "4" {
		t.Errorf("visits at KL_N_F1 = %q, %v; want 1 + 3 = 4", v.Value, ok)
	}
	if v, ok := emu.Lookup("CHW_U5_ASSESSMENTS", "202406", "KL_N_F2", "", ""); !ok || v.Value != "6" {
		t.Errorf("u5 at KL_N_F2 = %q, %v; want 6", v.Value, ok)
	}
	if dl := h.deadLetters("reason=mapping"); len(dl) != 1 || dl[0]["values"] != float64(1) {
		t.Errorf("dead letters %v, want the one refused value", dl)
	}
}

// TestIngestDoesNotWaitForTheTargetsMetadata: mapping at ingest takes the target's metadata
// from memory only. When it is not there (the first payload after a start) and DHIS2 is slow
// to serve it, the batch goes to the mapper stage, which waits for it; ingest answers
// without mapping. Were ingest to read the metadata itself, it would answer late and count
// the batch as mapped at ingest.
func TestIngestDoesNotWaitForTheTargetsMetadata(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	// FetchMappingMetadata starts with the data elements; the first read takes 2 s.
	emu.Faults().Add(dhis2test.Fault{Kind: dhis2test.FaultLatency, Path: "/api/dataElements", Delay: dhis2test.Duration(2 * time.Second), Times: 1})
	h := startTallyCfg(t, emu.URL, t.TempDir(), directSources, chwMapping)
	before := stages(t, h, "strict")
	h.send("strict", "strict-token-0123456789",
		`{"period":"202405","orgUnit":"KL_S_F1","dataValues":[{"dataElement":"visits","value":"10"}]}`, txlog.TxDelivered)
	if emu.Faults().List()[0].Hits != 1 {
		t.Fatalf("the slow metadata read was not the one mapping made: %+v", emu.Faults().List())
	}
	wantStages(t, h, "strict", before, 0, 1) // left to the mapper stage, which waited
}

// TestARefusedPayloadStoresNothingItMappedWhileRead: ingest maps a payload's batches while
// it reads them, before the payload proved valid. A payload refused at its last value (no data
// element, whole-payload validation) had its first two batches mapped by then:
// nothing of it may reach TALLY_DELIVER or the target, and the next payload is mapped and
// delivered as usual. The stream's last sequence counts every delivery message ever stored.
func TestARefusedPayloadStoresNothingItMappedWhileRead(t *testing.T) {
	emu := dhis2test.NewServer(dhis2test.WithVersion("2.40"))
	defer emu.Close()
	dir := t.TempDir()
	h := startTallyCfg(t, emu.URL, dir, directSources, chwMapping)
	const token = "summing-token-0123456789"
	// Stored by the mapper stage: one delivery message. It makes the metadata known.
	h.send("summing", token, `{"period":"202405","dataValues":[{"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_S_F1","value":"1"}]}`, txlog.TxDelivered)
	before, imports := stages(t, h, "summing"), emu.ImportRequests()

	refused := `{"period":"202406","dataValues":[
	  {"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F1","value":"1"},{"dataElement":"CHW_HOUSEHOLD_VISITS","orgUnit":"KL_N_F2","value":"2"},
	  {"dataElement":"CHW_U5_ASSESSMENTS","orgUnit":"KL_N_F1","value":"5"},{"dataElement":"CHW_U5_ASSESSMENTS","orgUnit":"KL_N_F2","value":"6"},
	  {"orgUnit":"KL_N_F1","value":"3"}]}`
	code, resp := h.post("/ingest/summing", "application/json", "Bearer "+token, []byte(refused))
	if code == http.StatusAccepted || !strings.Contains(fmt.Sprint(resp), "dataElement") {
		t.Fatalf("a payload whose last value has no data element: HTTP %d %v, want it refused, naming the field", code, resp)
	}
	h.send("summing", token, summingPayload, txlog.TxDelivered)

	wantStages(t, h, "summing", before, 3, 0) // the valid payload's three batches, at ingest
	if n := emu.ImportRequests() - imports; n != 3 {
		t.Errorf("%d imports after the warm-up, want the valid payload's 3", n)
	}
	if v, ok := emu.Lookup("CHW_HOUSEHOLD_VISITS", "202406", "KL_N_F1", "", ""); !ok || v.Value != "4" {
		t.Errorf("visits at KL_N_F1 = %q, %v; want the valid payload's 1 + 3 = 4", v.Value, ok)
	}
	h.stop()
	withStore(t, dir, func(c *stream.Conn) {
		s, err := c.JS.Stream(context.Background(), stream.DeliverStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if last := info.State.LastSeq; last != 4 {
			t.Errorf("TALLY_DELIVER stored %d messages, want 4: the warm-up's and the valid payload's three", last)
		}
	})
}
