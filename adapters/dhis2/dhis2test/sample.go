package dhis2test

import (
	_ "embed"
	"fmt"
)

//go:embed sample/kalima.yaml
var sampleYAML []byte

// SampleMetadataYAML returns the bundled Kalima metadata file (sample/kalima.yaml).
func SampleMetadataYAML() []byte { return append([]byte(nil), sampleYAML...) }

// SampleMetadata returns a fresh copy of the bundled Kalima sample metadata
// (DESIGN.md "Sample scenario") with its analytics facts, data element groups
// and aggregate data exchanges (sample/kalima-analytics.yaml). The codes → UIDs
// table is in sample/kalima.yaml and mirrored by the Sample* constants.
func SampleMetadata() *Metadata {
	m, err := ParseMetadata(sampleYAML, "yaml")
	if err != nil {
		panic(fmt.Sprintf("dhis2test: bundled sample metadata is invalid: %v", err))
	}
	if err := AddSampleAnalytics(m); err != nil {
		panic(fmt.Sprintf("dhis2test: bundled sample analytics are invalid: %v", err))
	}
	return m
}

// Credentials of the sample. SampleToken is a V1 personal access token
// (accepted by every version from 2.37); SampleTokenV2 a d2p_ token
// (2.41+). Both belong to SampleUser, who holds ALL and the KL hierarchy.
// SampleDistrictUser may only capture data in KL_NORTH (F_DATAVALUE_ADD).
const (
	SampleUser             = "admin"
	SamplePassword         = "district"
	SampleToken            = "d2pat_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oO1227279142"
	SampleTokenV2          = "d2p_OL8dKLzdocJ2isAjIhKtJ0RlgLKOmxgJTeKdNnFRIBXu3c9arL"
	SampleDistrictUser     = "kl_north"
	SampleDistrictPassword = "North-District1"
)

// UIDs of the sample (stable; see sample/kalima.yaml).
const (
	SampleOrgUnitKL      = "M0XvqZjxTW3"
	SampleOrgUnitKLNorth = "xvboSRt5Mh3"
	SampleOrgUnitKLSouth = "dAwVtRMflhb"
	SampleOrgUnitKLNF1   = "muaptt0Azn0"
	SampleOrgUnitKLNF2   = "DNRUQxA71p2"
	SampleOrgUnitKLSF1   = "Td8VKqxryo1"
	SampleOrgUnitKLSF2   = "nIj7BRd03Q2"

	SampleDataSetEPI = "eRTpPWzUB4q" // EPI_MONTHLY
	SampleDataSetMAL = "sskDI1EDL0Y" // MAL_MONTHLY (attribute combo FUNDING)
	SampleDataSetCHW = "wu1JOSNta0P" // CHW_MONTHLY

	SampleDEEPIBCG                   = "BYQ0DVbpag1"
	SampleDEEPIPenta1                = "xYKiuMw7TpH"
	SampleDEEPIMeasles1              = "D8BHbNdZU0N"
	SampleDEMALConfirmed             = "YJ2gClNbc7H"
	SampleDEMALTreated               = "rd0APsmYaUS"
	SampleDEMALLLINDistributed       = "RCsllZq3Zyc"
	SampleDEMALRemarks               = "ZOkN8gaW18v"
	SampleDECHWHouseholdVisits       = "jsgJ0Wu8FxT"
	SampleDECHWU5Assessments         = "wXqxni7z9Kw"
	SampleDECHWPregnanciesRegistered = "RkNr4aE28uz"

	SampleCOCFemaleLT1  = "yx4Ag8SsaxT" // F_LT1
	SampleCOCFemale1To4 = "mknuj64AX6V" // F_1TO4
	SampleCOCMaleLT1    = "M2ewMuBY6rf" // M_LT1
	SampleCOCMale1To4   = "NcAKEIOUttY" // M_1TO4
	SampleAOCGov        = "pATIk27f4t3" // GOV
	SampleAOCNGO        = "tGolUByxRmX" // NGO

	SampleCategoryComboSexAge  = "sNdV40J599d"
	SampleCategoryComboFunding = "TCZWZYvRSZe"
	SampleAttributeAggDECode   = "Khe37ak1aSJ" // AGG_DE_CODE
)
