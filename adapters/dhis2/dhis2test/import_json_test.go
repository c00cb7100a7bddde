package dhis2test

import (
	"net/http"
	"testing"
)

const malJanuary = `{"dataSet":"MAL_MONTHLY","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV",
 "dataValues":[
  {"dataElement":"MAL_CONFIRMED","categoryOptionCombo":"F_LT1","value":"12"},
  {"dataElement":"MAL_CONFIRMED","categoryOptionCombo":"M_LT1","value":7},
  {"dataElement":"MAL_TREATED","value":"19","comment":"all treated"}]}`

// spec dhis2.md §1.3 (idScheme=CODE), §2.2 (SUCCESS → 200 "Import was successful."), §2.3 (shapes).
func TestJSONImport240Success(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.40"))
	r := postJSON(t, srv, "?idScheme=CODE", malJanuary)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if r.body["httpStatus"] != "OK" || r.body["status"] != "OK" || r.body["message"] != "Import was successful." {
		t.Errorf("web message: %s", r.raw)
	}
	sum := summaryOf(t, r)
	if sum["responseType"] != "ImportSummary" || sum["status"] != "SUCCESS" {
		t.Errorf("summary: %v", sum)
	}
	if got := counts(t, sum); got != [4]int{3, 0, 0, 0} {
		t.Errorf("counts %v", got)
	}
	if _, ok := sum["rejectedIndexes"]; ok {
		t.Error("2.40 must not send rejectedIndexes (§2.3: from 2.41)")
	}
	if sum["dataSetComplete"] != "false" {
		t.Errorf("dataSetComplete = %v", sum["dataSetComplete"])
	}
	v, ok := srv.Lookup("MAL_CONFIRMED", "202401", "KL_N_F1", "F_LT1", "GOV")
	if !ok || v.Value != "12" || v.StoredBy != SampleUser {
		t.Errorf("stored %+v %v", v, ok)
	}
	if v, _ := srv.Lookup("MAL_CONFIRMED", "202401", "KL_N_F1", "M_LT1", "GOV"); v.Value != "7" {
		t.Errorf("numeric JSON value stored as %q (§4.1: numbers accepted)", v.Value)
	}
	if v, _ := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV"); v.Comment != "all treated" {
		t.Errorf("comment %q", v.Comment)
	}
	if srv.Store().Len() != 3 || srv.ImportRequests() != 1 {
		t.Errorf("len %d imports %d", srv.Store().Len(), srv.ImportRequests())
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		t.Errorf("content type %q", ct)
	}
}

// spec dhis2.md §2.4 A: one unknown data element → HTTP 409 WARNING with the
// E7610 conflict, its index, and the exact message.
func TestJSONImport240Warning(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.40"))
	body := `{"dataValues":[
	 {"dataElement":"BYQ0DVbpag1","period":"202401","orgUnit":"muaptt0Azn0","categoryOptionCombo":"yx4Ag8SsaxT","value":"1"},
	 {"dataElement":"BYQ0DVbpag1","period":"202401","orgUnit":"muaptt0Azn0","categoryOptionCombo":"M2ewMuBY6rf","value":"2"},
	 {"dataElement":"XXXXXXXXXXX","period":"202401","orgUnit":"muaptt0Azn0","value":"3"}]}`
	r := postJSON(t, srv, "", body)
	if r.status != http.StatusConflict {
		t.Fatalf("status %d", r.status)
	}
	if r.body["httpStatus"] != "Conflict" || r.body["status"] != "WARNING" ||
		r.body["message"] != "One more conflicts encountered, please check import summary." {
		t.Errorf("web message %s", r.raw)
	}
	if r.header.Get("Cache-Control") != "no-cache, private" {
		t.Errorf("Cache-Control %q (§2.2)", r.header.Get("Cache-Control"))
	}
	sum := summaryOf(t, r)
	if got := counts(t, sum); got != [4]int{2, 0, 0, 1} {
		t.Errorf("counts %v", got)
	}
	cs := conflictsOf(sum)
	if len(cs) != 1 {
		t.Fatalf("conflicts %v", cs)
	}
	c := cs[0]
	if c["object"] != "XXXXXXXXXXX" || c["errorCode"] != "E7610" || c["property"] != "dataElement" ||
		c["value"] != "Data element not found or not accessible: `XXXXXXXXXXX`" {
		t.Errorf("conflict %v", c)
	}
	if objs := c["objects"].(map[string]any); objs["dataElement"] != "XXXXXXXXXXX" {
		t.Errorf("objects %v", objs)
	}
	if idx := intsOf(c["indexes"]); len(idx) != 1 || idx[0] != 2 {
		t.Errorf("indexes %v", idx)
	}
}

// spec dhis2.md §2.4 C: unknown header dataSet aborts with E7600, HTTP 409 ERROR.
func TestJSONImport240DataSetAbort(t *testing.T) {
	srv := newTestServer(t, WithVersion("2.40"))
	r := postJSON(t, srv, "", `{"dataSet":"nOtAdAtAsEt","dataValues":[{"dataElement":"BYQ0DVbpag1","period":"202401","orgUnit":"muaptt0Azn0","value":"1"}]}`)
	if r.status != http.StatusConflict || r.body["status"] != "ERROR" || r.body["message"] != "An error occurred, please check import summary." {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	sum := summaryOf(t, r)
	if sum["status"] != "ERROR" || sum["description"] != "Import process was aborted" {
		t.Errorf("summary %v", sum)
	}
	if got := counts(t, sum); got != [4]int{} {
		t.Errorf("counts %v", got)
	}
	cs := conflictsOf(sum)
	if len(cs) != 1 || cs[0]["errorCode"] != "E7600" || cs[0]["property"] != "dataSet" ||
		cs[0]["value"] != "Data set not found or not accessible: `nOtAdAtAsEt`" {
		t.Errorf("conflicts %v", cs)
	}
	if srv.Store().Len() != 0 {
		t.Error("aborted import stored values")
	}
}

// spec dhis2.md §1.4: unchanged values are ignored, changed ones updated,
// and the store keeps the history of writes.
func TestJSONImportUpdateAndHistory(t *testing.T) {
	srv := newTestServer(t)
	one := `{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"%s"}]}`
	for i, tc := range []struct {
		value string
		want  [4]int
	}{{"5", [4]int{1, 0, 0, 0}}, {"5", [4]int{0, 0, 0, 1}}, {"6", [4]int{0, 1, 0, 0}}} {
		r := postJSON(t, srv, "?idScheme=code", sprintf(one, tc.value), withHeader("X-Request-ID", sprintf("step-%d", i)))
		if got := counts(t, summaryOf(t, r)); got != tc.want {
			t.Errorf("step %d: counts %v want %v", i, got, tc.want)
		}
	}
	k := mustKey(t, srv, "MAL_TREATED", "202401", "KL_N_F1", "", "GOV")
	h := srv.Store().History(k)
	if len(h) != 2 || h[0].Operation != OpCreate || h[1].Operation != OpUpdate || h[1].OldValue != "5" ||
		h[1].NewValue != "6" || h[1].RequestID != "step-2" || !h[1].Audited {
		t.Errorf("history %+v", h)
	}
	v, _ := srv.Store().Get(k)
	if !v.Created.Equal(fixedNow) || !v.LastUpdated.Equal(fixedNow) {
		t.Errorf("times %v %v", v.Created, v.LastUpdated)
	}
}
