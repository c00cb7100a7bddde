package console_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tally-hmis/tally/mediator/txlog"
)

func TestMappingPreview(t *testing.T) {
	tl := startTally(t, "")
	held := tl.ingest(dvsJSON(goodValues("202401", 0)))
	tl.waitStatus(held, txlog.TxDelivered)
	b := tl.browser()
	b.login(viewerToken) // a preview changes nothing: a read session may make one
	if p := b.mustGet("/console/preview"); !strings.Contains(p.body, `name="payload"`) {
		t.Fatal("no payload field")
	}
	// Two values the target holds (one changed), one it lacks, and one for a data element it
	// does not know: without a mapping, the source's identifiers go as they are, so the
	// preview counts it as added too. The target holds two more values of the same data
	// element, period and org unit: stale.
	payload := dvsJSON([]dv{
		{"EPI_BCG", "202401", "KL_N_F1", "F_LT1", "1"},
		{"EPI_BCG", "202401", "KL_N_F1", "F_1TO4", "99"},
		{"EPI_PENTA1", "202401", "KL_N_F1", "F_LT1", "5"},
		{"NO_SUCH_DE", "202401", "KL_N_F1", "F_LT1", "3"},
	})
	p := b.do("POST", "/console/preview", url.Values{"csrf": {b.csrf()}, "source": {"cht"}, "contentType": {"application/json"}, "payload": {string(payload)}})
	if p.status != http.StatusOK {
		t.Fatalf("preview: HTTP %d %s", p.status, p.body)
	}
	for _, want := range []string{"4 values from source cht", "NO_SUCH_DE", "2 added", "1 changed", "1 unchanged", "2 stale", "Penta 1 doses given", `class="row-changed"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("preview lacks %q", want)
		}
	}
	if n := tl.emu.Store().Len(); n != 8 {
		t.Errorf("the target holds %d values after a preview, want the 8 delivered", n)
	}

	// An uploaded file, and a payload that cannot be read.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("csrf", b.csrf())
	_ = mw.WriteField("source", "cht")
	_ = mw.WriteField("contentType", "application/json")
	fw, _ := mw.CreateFormFile("file", "payload.json")
	_, _ = fw.Write(payload)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", tl.base+"/console/preview", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "4 values from source cht") {
		t.Errorf("uploaded preview: HTTP %d", res.StatusCode)
	}
	bad := b.do("POST", "/console/preview", url.Values{"csrf": {b.csrf()}, "source": {"cht"}, "contentType": {"application/json"}, "payload": {"{not json"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, `class="error"`) {
		t.Errorf("unreadable payload: HTTP %d", bad.status)
	}
}
