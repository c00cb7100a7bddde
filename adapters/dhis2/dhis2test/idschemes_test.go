package dhis2test

import (
	"testing"
)

const legacyAttr = "LegacyIdAtt"

func withLegacyIDs(t *testing.T, srv *Server) {
	t.Helper()
	if err := srv.UpdateMetadata(func(m *Metadata) error {
		m.Attributes = append(m.Attributes, &Attribute{ID: legacyAttr, Code: "LEGACY_ID", Name: "Legacy id", Unique: true})
		m.DataElement("MAL_TREATED").AttributeValues = AttributeValues{"LEGACY_ID": "MT-01"}
		m.OrgUnit("KL_N_F1").AttributeValues = AttributeValues{legacyAttr: "F-0001"}
		m.CategoryOptionCombo("GOV").AttributeValues = AttributeValues{"LEGACY_ID": "FUND-G"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// spec dhis2.md §1.2, §1.3: id schemes from query and payload with payload
// precedence and specific-over-idScheme, ATTRIBUTE:<uid>, NAME, case
// insensitivity, and the AOC looked up with the COC scheme.
func TestIDSchemes(t *testing.T) {
	cases := []struct {
		name, version, query, body string
		ok                         bool
	}{
		{"query CODE", "2.40", "?idScheme=code",
			`{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"}]}`, true},
		{"payload idScheme beats query idScheme", "2.40", "?idScheme=UID",
			`{"idScheme":"CODE","dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"}]}`, true},
		{"query specific beats payload idScheme", "2.40", "?dataElementIdScheme=UID",
			`{"idScheme":"CODE","dataValues":[{"dataElement":"rd0APsmYaUS","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"}]}`, true},
		{"payload specific beats query specific", "2.40", "?dataElementIdScheme=CODE&orgUnitIdScheme=CODE&categoryOptionComboIdScheme=CODE",
			`{"dataElementIdScheme":"NAME","dataValues":[{"dataElement":"Malaria cases treated","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"}]}`, true},
		{"NAME", "2.40", "?orgUnitIdScheme=Name&dataElementIdScheme=name",
			`{"dataValues":[{"dataElement":"Malaria cases treated","period":"202401","orgUnit":"North Facility 1","attributeOptionCombo":"pATIk27f4t3","value":"1"}]}`, true},
		{"ATTRIBUTE", "2.40", "?dataElementIdScheme=ATTRIBUTE:" + legacyAttr + "&orgUnitIdScheme=attribute:" + legacyAttr + "&categoryOptionComboIdScheme=ATTRIBUTE:" + legacyAttr,
			`{"dataValues":[{"dataElement":"MT-01","period":"202401","orgUnit":"F-0001","attributeOptionCombo":"FUND-G","value":"1"}]}`, true},
		{"ATTRIBUTE in payload", "2.40", "",
			`{"idScheme":"ATTRIBUTE:` + legacyAttr + `","dataValues":[{"dataElement":"MT-01","period":"202401","orgUnit":"F-0001","attributeOptionCombo":"FUND-G","value":"1"}]}`, true},
		{"AOC follows the COC scheme", "2.40", "?dataElementIdScheme=CODE&orgUnitIdScheme=CODE",
			`{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"}]}`, false},
		{"attributeOptionComboIdScheme query is not bound", "2.40", "?dataElementIdScheme=CODE&orgUnitIdScheme=CODE&attributeOptionComboIdScheme=CODE",
			`{"dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"}]}`, false},
		{"2.43 payload attributeOptionComboIdScheme", "2.43", "?dataElementIdScheme=CODE&orgUnitIdScheme=CODE",
			`{"attributeOptionComboIdScheme":"CODE","dataValues":[{"dataElement":"MAL_TREATED","period":"202401","orgUnit":"KL_N_F1","attributeOptionCombo":"GOV","value":"1"}]}`, true},
		{"XML root schemes", "2.40", "",
			"XML:" + `<dataValueSet xmlns="http://dhis2.org/schema/dxf/2.0" idScheme="CODE"><dataValue dataElement="MAL_TREATED" period="202401" orgUnit="KL_N_F1" attributeOptionCombo="GOV" value="1"/></dataValueSet>`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, WithVersion(tc.version))
			withLegacyIDs(t, srv)
			ct, body := "application/json", tc.body
			if len(body) > 4 && body[:4] == "XML:" {
				ct, body = "application/xml", body[4:]
			}
			r := do(t, srv, "POST", "/api/dataValueSets"+tc.query, ct, []byte(body))
			_, stored := srv.Lookup("MAL_TREATED", "202401", "KL_N_F1", "", "GOV")
			if stored != tc.ok {
				t.Errorf("stored=%v, want %v: %s", stored, tc.ok, r.raw)
			}
		})
	}
}

// spec dhis2.md §1.2: an unknown scheme value is refused, not guessed.
func TestInvalidIDScheme(t *testing.T) {
	srv := newTestServer(t)
	sum := summaryOf(t, postJSON(t, srv, "?idScheme=BOGUS", okBody))
	if sum["status"] != "ERROR" {
		t.Errorf("summary %v", sum)
	}
}
