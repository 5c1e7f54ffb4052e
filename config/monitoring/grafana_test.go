package monitoring_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	datasourcesFile = "../grafana/provisioning/datasources/phoenix.yml"
	providersFile   = "../grafana/provisioning/dashboards/phoenix.yml"
)

// TestGrafanaProvisioning reads the provisioning example as Grafana
// would: a Prometheus data source the dashboard's data source variable
// selects, and a file provider that loads dashboards from an absolute
// folder.
func TestGrafanaProvisioning(t *testing.T) {
	ds, prov := readFile(t, datasourcesFile), readFile(t, providersFile)
	variable := dashboardDatasourceType(t)
	for _, tc := range []struct {
		name             string
		dsOld, dsNew     string
		provOld, provNew string
		want             string // in some problem; "": none
	}{
		{name: "as shipped"},
		{name: "a data source of another type", dsOld: "type: prometheus", dsNew: "type: loki",
			want: `no data source of type "prometheus"`},
		{name: "not the default data source", dsOld: "isDefault: true", dsNew: "isDefault: false",
			want: "not the default"},
		{name: "a url without a scheme", dsOld: "url: http://127.0.0.1:9090", dsNew: "url: 127.0.0.1:9090",
			want: "url"},
		{name: "an older provisioning version", dsOld: "apiVersion: 1", dsNew: "apiVersion: 0",
			want: "apiVersion 0"},
		{name: "a relative dashboards folder", provOld: "path: /var/lib/grafana/dashboards/phoenix", provNew: "path: dashboards/phoenix",
			want: "not absolute"},
		{name: "a provider that is not a file provider", provOld: "type: file", provNew: "type: git",
			want: `type "git"`},
		{name: "a misspelt key", provOld: "updateIntervalSeconds", provNew: "updateIntervalSecond",
			want: "updateIntervalSecond"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems := provisioningProblems(mutate(t, ds, tc.dsOld, tc.dsNew), mutate(t, prov, tc.provOld, tc.provNew), variable)
			got := strings.Join(problems, "\n")
			if tc.want == "" && len(problems) > 0 || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("problems:\n%s\nwant one naming %q", got, tc.want)
			}
		})
	}
}

// dashboardDatasourceType is the plugin type the dashboard's datasource
// variable lists (its query).
func dashboardDatasourceType(t *testing.T) string {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, dashboardFile), &d); err != nil {
		t.Fatal(err)
	}
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			return v.query()
		}
	}
	t.Fatalf("%s: no datasource variable", dashboardFile)
	return ""
}

// The fields of Grafana's provisioning files that the example sets; a key
// that is not here is a typo Grafana would silently ignore.
type datasourcesDoc struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string         `yaml:"name"`
		Type      string         `yaml:"type"`
		Access    string         `yaml:"access"`
		URL       string         `yaml:"url"`
		IsDefault bool           `yaml:"isDefault"`
		Editable  bool           `yaml:"editable"`
		JSONData  map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

type providersDoc struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		Type                  string `yaml:"type"`
		Folder                string `yaml:"folder"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// decodeStrict decodes YAML, failing on keys the struct does not know.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// provisioningProblems lists what would keep the example from giving the
// dashboard its data: dsType is the data source type the dashboard's
// variable offers.
func provisioningProblems(dsYAML, provYAML []byte, dsType string) []string {
	var problems []string
	add := func(file, format string, args ...any) {
		problems = append(problems, filepath.Base(filepath.Dir(file))+"/"+filepath.Base(file)+": "+fmt.Sprintf(format, args...))
	}
	var ds datasourcesDoc
	if err := decodeStrict(dsYAML, &ds); err != nil {
		add(datasourcesFile, "%v", err)
	}
	if ds.APIVersion != 1 {
		add(datasourcesFile, "apiVersion %d, want 1", ds.APIVersion)
	}
	found := false
	for _, d := range ds.Datasources {
		if d.Type != dsType {
			continue
		}
		found = true
		if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(datasourcesFile, "data source %q: url %q is not an http(s) URL", d.Name, d.URL)
		}
		// The variable starts on the default data source; another one
		// leaves the panels empty until someone picks it.
		if !d.IsDefault {
			add(datasourcesFile, "data source %q is not the default, which the dashboard starts on", d.Name)
		}
	}
	if !found {
		add(datasourcesFile, "no data source of type %q, the type the dashboard's datasource variable lists", dsType)
	}

	var prov providersDoc
	if err := decodeStrict(provYAML, &prov); err != nil {
		add(providersFile, "%v", err)
	}
	if prov.APIVersion != 1 {
		add(providersFile, "apiVersion %d, want 1", prov.APIVersion)
	}
	if len(prov.Providers) == 0 {
		add(providersFile, "no provider")
	}
	for _, p := range prov.Providers {
		if p.Type != "file" {
			add(providersFile, "provider %q: type %q, want file", p.Name, p.Type)
		}
		if !filepath.IsAbs(p.Options.Path) {
			add(providersFile, "provider %q: options.path %q is not absolute", p.Name, p.Options.Path)
		}
	}
	return problems
}
