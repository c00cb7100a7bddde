package dvs

import (
	"io"
	"strconv"

	"github.com/tally-hmis/tally/transform"
)

// The Kalima sample scenario (DESIGN.md): data elements with their category option
// combos, facilities and the months of 2024.
var (
	kalimaSexAge   = []string{"F_LT1", "F_1TO4", "M_LT1", "M_1TO4"}
	kalimaDefault  = []string{""}
	kalimaElements = []struct {
		de   string
		cocs []string
		aocs []string
	}{
		{"MAL_CONFIRMED", kalimaSexAge, []string{"GOV", "NGO"}},
		{"MAL_TREATED", kalimaDefault, []string{"GOV", "NGO"}},
		{"MAL_LLIN_DISTRIBUTED", kalimaDefault, []string{"GOV", "NGO"}},
		{"EPI_BCG", kalimaSexAge, kalimaDefault},
		{"EPI_PENTA1", kalimaSexAge, kalimaDefault},
		{"EPI_MEASLES1", kalimaSexAge, kalimaDefault},
		{"CHW_HOUSEHOLD_VISITS", kalimaDefault, kalimaDefault},
		{"CHW_U5_ASSESSMENTS", kalimaDefault, kalimaDefault},
	}
	kalimaOrgUnits = []string{"KL_N_F1", "KL_N_F2", "KL_S_F1", "KL_S_F2"}
	kalimaPeriods  = func() (p []string) {
		for m := 1; m <= 12; m++ {
			p = append(p, strconv.Itoa(202400+m))
		}
		return p
	}()
	kalimaNumbers = func() (n []string) {
		for i := range 503 {
			n = append(n, strconv.Itoa(i))
		}
		return n
	}()
)

// kalimaValue returns the i-th value of an endless, repetitive Kalima data set.
func kalimaValue(i int) transform.DataValue {
	n := i
	ou := kalimaOrgUnits[n%len(kalimaOrgUnits)]
	n /= len(kalimaOrgUnits)
	e := kalimaElements[n%len(kalimaElements)]
	n /= len(kalimaElements)
	coc := e.cocs[n%len(e.cocs)]
	aoc := e.aocs[(n/len(e.cocs))%len(e.aocs)]
	pe := kalimaPeriods[(i/97)%len(kalimaPeriods)]
	return transform.DataValue{DataElement: e.de, Period: pe, OrgUnit: ou, CategoryOptionCombo: coc,
		AttributeOptionCombo: aoc, Value: kalimaNumbers[i%503], StoredBy: "kalima-hmis", Index: i}
}

// kalimaJSON streams a DHIS2 data value set of n Kalima values in the shape DHIS2 exports
// (one value per line, every field present), generated as it is read.
type kalimaJSON struct {
	n, i    int
	pending []byte
	done    bool
}

func newKalimaJSON(n int) *kalimaJSON {
	return &kalimaJSON{n: n, pending: []byte(`{"dataSet":"MAL_MONTHLY","idScheme":"CODE","dataValues":[` + "\n")}
}

func (g *kalimaJSON) Read(p []byte) (int, error) {
	for len(g.pending) < len(p) && !g.done {
		if g.i == g.n {
			g.pending = append(g.pending, "\n]}\n"...)
			g.done = true
			break
		}
		if g.i > 0 {
			g.pending = append(g.pending, ",\n"...)
		}
		v := kalimaValue(g.i)
		g.pending = appendKalimaValue(g.pending, &v)
		g.i++
	}
	if len(g.pending) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.pending)
	g.pending = g.pending[:copy(g.pending, g.pending[n:])]
	return n, nil
}

func appendKalimaValue(b []byte, v *transform.DataValue) []byte {
	b = append(b, `{"dataElement":"`...)
	b = append(b, v.DataElement...)
	b = append(b, `","period":"`...)
	b = append(b, v.Period...)
	b = append(b, `","orgUnit":"`...)
	b = append(b, v.OrgUnit...)
	b = append(b, `","categoryOptionCombo":"`...)
	b = append(b, v.CategoryOptionCombo...)
	b = append(b, `","attributeOptionCombo":"`...)
	b = append(b, v.AttributeOptionCombo...)
	b = append(b, `","value":"`...)
	b = append(b, v.Value...)
	b = append(b, `","storedBy":"`...)
	b = append(b, v.StoredBy...)
	b = append(b, `","created":"2024-03-15T10:20:30.000+0000","followup":false}`...)
	return b
}

func kalimaJSONBytes(n int) []byte {
	b, _ := io.ReadAll(newKalimaJSON(n))
	return b
}

func kalimaXMLBytes(n int) []byte {
	var b []byte
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" dataSet="MAL_MONTHLY" idScheme="CODE">`+"\n"...)
	for i := range n {
		v := kalimaValue(i)
		b = append(b, `  <dataValue dataElement="`+v.DataElement+`" period="`+v.Period+`" orgUnit="`+v.OrgUnit+
			`" categoryOptionCombo="`+v.CategoryOptionCombo+`" attributeOptionCombo="`+v.AttributeOptionCombo+
			`" value="`+v.Value+`" storedBy="`+v.StoredBy+`" created="2024-03-15T10:20:30.000+0000" followup="false"/>`+"\n"...)
	}
	return append(b, "</dataValueSet>\n"...)
}

func kalimaCSVBytes(n int) []byte {
	b := []byte("dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value,storedby,lastupdated,comment,followup\n")
	for i := range n {
		v := kalimaValue(i)
		b = append(b, v.DataElement+","+v.Period+","+v.OrgUnit+","+v.CategoryOptionCombo+","+v.AttributeOptionCombo+","+
			v.Value+","+v.StoredBy+",2024-03-15,,false\n"...)
	}
	return b
}
