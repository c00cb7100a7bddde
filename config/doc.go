// Package config defines Tally's YAML configuration, loads it with ${VAR} and ${file:PATH}
// expansion, and validates it so that an invalid file is refused at start with every problem
// listed against its line.
//
// A minimal file:
//
//	http:
//	  addr: 127.0.0.1:8080
//	nats:
//	  store_dir: ./data/nats        # empty url: embedded JetStream server
//	admin:
//	  token: ${TALLY_ADMIN_TOKEN}
//	sources:
//	  - name: cht
//	    format: json
//	    auth: {tokens: ["${file:/run/secrets/cht_token}"]}
//	    targets: [hmis]
//	targets:
//	  - name: hmis
//	    url: https://hmis.example.org
//	    token: ${HMIS_PAT}
//	    id_schemes: {data_element: CODE, org_unit: CODE, category_option_combo: CODE}
package config
