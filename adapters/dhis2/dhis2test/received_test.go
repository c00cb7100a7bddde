package dhis2test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Receive counts see what Store.History cannot: a resend of unchanged
// content is "ignored" by DHIS2 (spec dhis2.md §1.4) and writes nothing, yet
// it was received. Dry runs are not counted, unresolvable values have no
// key. Both engines (2.38–2.42 validator, 2.43 pipeline).
func TestReceivedCounts(t *testing.T) {
	for _, ver := range []string{"2.40", "2.43"} {
		t.Run(ver, func(t *testing.T) {
			srv := newTestServer(t, WithVersion(ver))
			k := mustKey(t, srv, "MAL_TREATED", "202401", "KL_N_F1", "", "GOV")
			body := treated("202401", "5")
			postJSON(t, srv, "?idScheme=CODE", body)
			r := postJSON(t, srv, "?idScheme=CODE", body) // unchanged: ignored (2.40) / updated (2.43)
			if ver == "2.40" {
				if got := counts(t, summaryOf(t, r)); got != [4]int{0, 0, 0, 1} {
					t.Fatalf("second import counts %v, want ignored", got)
				}
				if n := len(srv.Store().History(k)); n != 1 {
					t.Fatalf("history has %d writes, want 1 (the ignored resend writes nothing)", n)
				}
			}
			postJSON(t, srv, "?idScheme=CODE&dryRun=true", body)
			postJSON(t, srv, "?idScheme=CODE", `{"dataValues":[{"dataElement":"NOPE","period":"202401","orgUnit":"KL_N_F1","value":"1"}]}`)
			if got := srv.Store().Received(k); got != 2 {
				t.Errorf("Received = %d, want 2 (dry run excluded)", got)
			}
			snap := srv.Store().ReceivedCounts()
			if len(snap) != 1 || snap[k] != 2 || srv.Store().ReceivedTotal() != 2 {
				t.Errorf("snapshot %v total %d", snap, srv.Store().ReceivedTotal())
			}
			snap[k] = 99 // a snapshot, not the live map
			if srv.Store().Received(k) != 2 {
				t.Error("snapshot aliases the store")
			}
			srv.Store().ResetReceived()
			if srv.Store().Received(k) != 0 || len(srv.Store().ReceivedCounts()) != 0 {
				t.Error("reset left counts")
			}
			if _, ok := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV"); !ok {
				t.Error("ResetReceived removed the value")
			}
		})
	}
}

// A value refused by a later check (here E7617, outside the user's
// hierarchy) was still received; Store.Reset clears the counts too.
func TestReceivedCountsRejectedAndReset(t *testing.T) {
	srv := newTestServer(t)
	k := mustKey(t, srv, "MAL_TREATED", "202401", "KL_S_F1", "", "GOV")
	r := postJSON(t, srv, "?idScheme=CODE", `{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_S_F1","attributeOptionCombo":"GOV","value":"3"}]}`,
		withBasic(SampleDistrictUser, SampleDistrictPassword))
	if cs := conflictsOf(summaryOf(t, r)); len(cs) != 1 || cs[0]["errorCode"] != "E7617" {
		t.Fatalf("want E7617: %s", r.raw)
	}
	if srv.Store().Received(k) != 1 {
		t.Errorf("Received = %d, want 1", srv.Store().Received(k))
	}
	srv.Store().Reset()
	if srv.Store().ReceivedTotal() != 0 {
		t.Error("Store.Reset kept receive counts")
	}
}

// The same over the admin API, for a dhis2-sim process.
func TestReceivedAdminAPI(t *testing.T) {
	srv := newTestServer(t)
	two := `{"dataValues":[` +
		`{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"},` +
		`{"dataElement":"MAL_TREATED","period":"202402","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"}]}`
	postJSON(t, srv, "?idScheme=CODE", two)
	postJSON(t, srv, "?idScheme=CODE", treated("202401", "1"))
	admin := func(method, query string) ReceivedReport {
		t.Helper()
		base := srv.httpSrv.URL + "/__sim/received" + query
		req, _ := http.NewRequest(method, base, nil)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var rep ReceivedReport
		if method == http.MethodGet {
			if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
				t.Fatal(err)
			}
		} else if res.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: HTTP %d", res.StatusCode)
		}
		return rep
	}
	rep := admin(http.MethodGet, "")
	if rep.Keys != 2 || rep.Total != 3 || rep.MaxPerKey != 2 || len(rep.Counts) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if c := rep.Counts[0]; c.Period != "202401" || c.Count != 2 || c.DataElement != SampleDEMALTreated ||
		c.CategoryOptionCombo != DefaultCategoryOptionComboUID || c.AttributeOptionCombo != SampleAOCGov {
		t.Errorf("first count %+v", c)
	}
	if dup := admin(http.MethodGet, "?duplicates=true"); len(dup.Counts) != 1 || dup.Counts[0].Period != "202401" {
		t.Errorf("duplicates %+v", dup)
	}
	admin(http.MethodDelete, "")
	if rep := admin(http.MethodGet, ""); rep.Keys != 0 || rep.Total != 0 || len(rep.Counts) != 0 {
		t.Errorf("after reset %+v", rep)
	}
}
