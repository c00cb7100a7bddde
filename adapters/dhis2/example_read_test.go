package dhis2_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/transform"
)

// A scheduled exchange pulls program indicators from a tracker instance as a data value
// set, written in the codes the national HMIS knows, and cuts it into batches.
func ExampleClient_AnalyticsDataValueSet() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"dataValues":[
		 {"dataElement":"EPI_BCG","period":"202401","orgUnit":"KL_N_F1","categoryOptionCombo":"F_LT1",
		  "value":"12","comment":"[aggregated]","created":"2024-03-15","lastUpdated":"2024-03-15","followup":false}]}`)
	}))
	defer srv.Close()

	c, err := dhis2.New(dhis2.Config{BaseURL: srv.URL, Username: "admin", Password: "district"})
	if err != nil {
		fmt.Println(err)
		return
	}
	batcher := transform.NewBatcher(transform.BatcherConfig{
		Source: "tracker", Received: time.Now(),
		Schemes: transform.IDSchemes{IDScheme: transform.SchemeCode},
		Emit: func(b *transform.Batch) error {
			for _, v := range b.Values {
				fmt.Println(v.DataElement, v.CategoryOptionCombo, v.Period, v.OrgUnit, v.Value, v.Comment == "")
			}
			return nil
		},
	})
	n, err := c.AnalyticsDataValueSet(context.Background(), dhis2.AnalyticsRequest{
		DX:                     []string{"PI_BCG_F_LT1"},
		PE:                     []string{"LAST_3_MONTHS"},
		OU:                     []string{"KL", "LEVEL-3"},
		InputIDScheme:          transform.SchemeCode,
		OutputIDScheme:         transform.SchemeCode,
		OutputDataItemIDScheme: "ATTRIBUTE:Khe37ak1aSJ", // AGG_DE_CODE
	}, batcher)
	if err == nil {
		err = batcher.Close()
	}
	fmt.Println(n, err)
	// Output:
	// EPI_BCG F_LT1 202401 KL_N_F1 12 true
	// 1 <nil>
}
