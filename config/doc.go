// Package config defines Tally's YAML configuration, loads it with ${VAR} and ${file:PATH}
// expansion, and validates it so that an invalid file is refused at start with every problem
// listed against its line.
//
// It holds the schema of every section Tally reads, the exchanges: and notify: sections
// included (Config.DecodeExchanges, Config.DecodeNotify); the openhim: and mappings:
// sections are decoded by the packages that own them, through Config.DecodeSection, so
// that their problems carry lines too. It only reads and checks: it must not import the
// mediator, an adapter or the mapping engine (it reads transform's id schemes and periods
// to check them), and what another section's owner knows (a mapping set, a cron
// expression) is asked through ExchangeRefs.
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
