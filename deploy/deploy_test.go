// Package deploy holds no code: its tests check the deployment files in this
// directory (Dockerfile, docker compose, systemd, Kubernetes) as far as they
// can be checked without a container engine, an init system or a cluster.
package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoRoot is the module root, seen from this package's directory (go test
// runs a package's tests in its directory).
const repoRoot = ".."

var regions = []string{"eu-west", "us-east", "ap-south"}

// ---------------------------------------------------------------- helpers

// yamlFiles lists every YAML file under deploy/.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// decodeDocs decodes every document of a YAML file, one by one; empty
// documents are left out.
func decodeDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeDocsBytes(t, path, b)
}

func decodeDocsBytes(t *testing.T, name string, b []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for i := 0; ; i++ {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", name, i+1, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

// get walks a decoded YAML tree: string keys index maps, ints index lists.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...any) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func strs(v any, path ...any) []string {
	var out []string
	for _, x := range list(v, path...) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// flagValue returns the value of --name=VALUE or --name VALUE in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// vantageBinary builds cmd/vantage once, the way deploy/Dockerfile does, and
// returns its path. Tests that need it are skipped with -short.
var build struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

const (
	testVersion = "deploytest"
	testCommit  = "0123abcd"
)

func vantageBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the static build of cmd/vantage (CGO_ENABLED=0 go build -trimpath ./cmd/vantage)")
	}
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "vantage-deploy-test-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "vantage")
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
			"-ldflags", "-s -w -X main.version="+testVersion+" -X main.commit="+testCommit,
			"-o", build.path, "./cmd/vantage")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("CGO_ENABLED=0 go build -trimpath ./cmd/vantage: %v\n%s", build.err, build.out)
	}
	return build.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.path != "" {
		os.RemoveAll(filepath.Dir(build.path))
	}
	os.Exit(code)
}

// validate runs `vantage validate --config file` and wants OK.
func validate(t *testing.T, file string) {
	t.Helper()
	bin := vantageBinary(t)
	cmd := exec.Command(bin, "validate", "--config", file)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "OK: ") {
		t.Fatalf("vantage validate --config %s: %v\n%s", file, err, out)
	}
	t.Logf("vantage validate --config %s: %s", file, strings.TrimSpace(string(out)))
}

// ---------------------------------------------------------------- YAML

func TestEveryYAMLFileParses(t *testing.T) {
	files := yamlFiles(t)
	for _, want := range []string{"docker-compose.yml", "compose/vantage.yaml"} {
		if !slices.Contains(files, want) {
			t.Errorf("missing %s (have %v)", want, files)
		}
	}
	for _, f := range files {
		if docs := decodeDocs(t, f); len(docs) == 0 {
			t.Errorf("%s: no document", f)
		}
	}
}

// ---------------------------------------------------------------- Kubernetes

type k8sObject struct {
	file string
	doc  map[string]any
}

func k8sObjects(t *testing.T) map[string][]k8sObject {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no kubernetes/*.yaml: %v", err)
	}
	byKind := map[string][]k8sObject{}
	for _, f := range files {
		for i, doc := range decodeDocs(t, f) {
			for _, key := range []string{"apiVersion", "kind"} {
				if str(doc, key) == "" {
					t.Errorf("%s: document %d has no %s", f, i+1, key)
				}
			}
			if str(doc, "metadata", "name") == "" {
				t.Errorf("%s: document %d (%s) has no metadata.name", f, i+1, str(doc, "kind"))
			}
			kind := str(doc, "kind")
			if kind != "Namespace" && str(doc, "metadata", "namespace") != "vantage" {
				t.Errorf("%s: %s %s: namespace %q, want vantage", f, kind, str(doc, "metadata", "name"), str(doc, "metadata", "namespace"))
			}
			byKind[kind] = append(byKind[kind], k8sObject{f, doc})
		}
	}
	return byKind
}

func TestKubernetesObjects(t *testing.T) {
	objs := k8sObjects(t)
	for kind, n := range map[string]int{"Namespace": 1, "Secret": 1, "ConfigMap": 1, "Service": 2, "StatefulSet": 3} {
		if len(objs[kind]) != n {
			t.Errorf("%d %s objects, want %d", len(objs[kind]), kind, n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	secret := objs["Secret"][0].doc
	secretName := str(secret, "metadata", "name")
	if _, ok := get(secret, "stringData", "key").(string); !ok {
		t.Errorf("Secret %s has no stringData.key", secretName)
	}

	var gossipSvc string
	for _, o := range objs["Service"] {
		if str(o.doc, "spec", "clusterIP") != "None" {
			continue
		}
		gossipSvc = str(o.doc, "metadata", "name")
		if get(o.doc, "spec", "publishNotReadyAddresses") != true {
			t.Errorf("headless Service %s: publishNotReadyAddresses is not true", gossipSvc)
		}
		protos := map[string]bool{}
		for _, p := range list(o.doc, "spec", "ports") {
			if get(p, "port") == 7946 {
				protos[str(p, "protocol")] = true
			}
		}
		if !protos["TCP"] || !protos["UDP"] {
			t.Errorf("headless Service %s: port 7946 protocols %v, want TCP and UDP", gossipSvc, protos)
		}
	}
	if gossipSvc == "" {
		t.Fatal("no headless Service (clusterIP: None) for gossip")
	}

	cmName := str(objs["ConfigMap"][0].doc, "metadata", "name")
	var seen []string
	for _, o := range objs["StatefulSet"] {
		name := str(o.doc, "metadata", "name")
		t.Run(name, func(t *testing.T) {
			ss := o.doc
			if got := str(ss, "spec", "serviceName"); got != gossipSvc {
				t.Errorf("serviceName %q, want the headless Service %q", got, gossipSvc)
			}
			pod := get(ss, "spec", "template", "spec")
			if get(pod, "securityContext", "runAsNonRoot") != true {
				t.Error("pod securityContext.runAsNonRoot is not true")
			}
			if uid := get(pod, "securityContext", "runAsUser"); uid != 65532 {
				t.Errorf("pod runAsUser %v, want 65532", uid)
			}
			cs := list(pod, "containers")
			if len(cs) != 1 {
				t.Fatalf("%d containers, want 1", len(cs))
			}
			c := cs[0]
			if p := str(c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
				t.Errorf("livenessProbe path %q, want /healthz", p)
			}
			if p := str(c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
				t.Errorf("readinessProbe path %q, want /readyz", p)
			}
			sc := get(c, "securityContext")
			if get(sc, "readOnlyRootFilesystem") != true {
				t.Error("readOnlyRootFilesystem is not true")
			}
			if get(sc, "allowPrivilegeEscalation") != false {
				t.Error("allowPrivilegeEscalation is not false")
			}
			if get(sc, "runAsNonRoot") != true {
				t.Error("container securityContext.runAsNonRoot is not true")
			}
			if d := strs(sc, "capabilities", "drop"); !slices.Equal(d, []string{"ALL"}) {
				t.Errorf("capabilities.drop %v, want [ALL]", d)
			}
			if a := strs(sc, "capabilities", "add"); !slices.Equal(a, []string{"NET_RAW"}) {
				t.Errorf("capabilities.add %v, want [NET_RAW]", a)
			}
			for k, want := range map[string]string{
				"requests.cpu": "50m", "requests.memory": "64Mi", "limits.cpu": "500m", "limits.memory": "256Mi",
			} {
				a, b, _ := strings.Cut(k, ".")
				if got := str(c, "resources", a, b); got != want {
					t.Errorf("resources.%s %q, want %q", k, got, want)
				}
			}
			ports := map[string]bool{}
			for _, p := range list(c, "ports") {
				ports[fmt.Sprintf("%v/%s", get(p, "containerPort"), str(p, "protocol"))] = true
			}
			for _, want := range []string{"8080/TCP", "7946/TCP", "7946/UDP"} {
				if !ports[want] {
					t.Errorf("no container port %s (have %v)", want, ports)
				}
			}

			args := strs(c, "args")
			if len(args) == 0 || args[0] != "run" {
				t.Fatalf("args %v: want `run ...`", args)
			}
			region, _ := flagValue(args, "region")
			if !slices.Contains(regions, region) {
				t.Errorf("--region %q, want one of %v", region, regions)
			}
			seen = append(seen, region)
			if want := "vantage-" + region; name != want {
				t.Errorf("StatefulSet for region %s is named %s, want %s", region, name, want)
			}
			if cfg, _ := flagValue(args, "config"); cfg != "/etc/vantage/vantage.yaml" {
				t.Errorf("--config %q", cfg)
			}
			join, _ := flagValue(args, "join")
			for _, r := range regions {
				want := fmt.Sprintf("vantage-%s-0.%s.vantage.svc.cluster.local:7946", r, gossipSvc)
				if !slices.Contains(strings.Split(join, ","), want) {
					t.Errorf("--join %q lacks %s", join, want)
				}
			}
			var keyRef bool
			for _, e := range list(c, "env") {
				if str(e, "name") == "VANTAGE_GOSSIP_KEY" {
					keyRef = str(e, "valueFrom", "secretKeyRef", "name") == secretName &&
						str(e, "valueFrom", "secretKeyRef", "key") == "key"
				}
			}
			if !keyRef {
				t.Errorf("VANTAGE_GOSSIP_KEY does not come from Secret %s key \"key\"", secretName)
			}
			var cmRef bool
			for _, v := range list(pod, "volumes") {
				cmRef = cmRef || str(v, "configMap", "name") == cmName
			}
			if !cmRef {
				t.Errorf("no volume from ConfigMap %s", cmName)
			}
		})
	}
	slices.Sort(seen)
	want := slices.Sorted(slices.Values(regions))
	if !slices.Equal(seen, want) {
		t.Errorf("StatefulSet regions %v, want one each of %v", seen, want)
	}
}

// TestKubernetesConfigValidates runs `vantage validate` on the config held in
// the ConfigMap.
func TestKubernetesConfigValidates(t *testing.T) {
	cm := k8sObjects(t)["ConfigMap"][0].doc
	cfg := str(cm, "data", "vantage.yaml")
	if cfg == "" {
		t.Fatal("ConfigMap has no data.vantage.yaml")
	}
	var parsed map[string]any
	if err := yaml.Unmarshal([]byte(cfg), &parsed); err != nil {
		t.Fatal(err)
	}
	if got := strs(parsed, "cluster", "regions"); !slices.Equal(got, regions) {
		t.Errorf("cluster.regions %v, want %v", got, regions)
	}
	file := filepath.Join(t.TempDir(), "vantage.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	validate(t, file)
}

// ---------------------------------------------------------------- compose

func TestCompose(t *testing.T) {
	docs := decodeDocs(t, "docker-compose.yml")
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	services, _ := get(docs[0], "services").(map[string]any)
	var nodes []string
	hostPorts := map[string]string{}
	var others []string
	for name, svc := range services {
		args := strs(svc, "command")
		if len(args) == 0 || args[0] != "run" {
			others = append(others, name)
			continue
		}
		nodes = append(nodes, name)
		region, _ := flagValue(args, "region")
		if region != name {
			t.Errorf("service %s: --region %q, want the service's name", name, region)
		}
		join, ok := flagValue(args, "join")
		if !ok {
			t.Errorf("service %s: no --join", name)
		}
		for _, r := range regions {
			if !slices.Contains(strings.Split(join, ","), r+":7946") {
				t.Errorf("service %s: --join %q lacks %s:7946", name, join, r)
			}
		}
		if cfg, _ := flagValue(args, "config"); cfg != "/etc/vantage/vantage.yaml" {
			t.Errorf("service %s: --config %q", name, cfg)
		}
		if !slices.Contains(strs(svc, "cap_add"), "NET_RAW") {
			t.Errorf("service %s: cap_add %v lacks NET_RAW", name, strs(svc, "cap_add"))
		}
		if !slices.Contains(strs(svc, "cap_drop"), "ALL") {
			t.Errorf("service %s: cap_drop %v lacks ALL", name, strs(svc, "cap_drop"))
		}
		if test := strs(svc, "healthcheck", "test"); len(test) < 2 || test[0] != "CMD" || test[1] != "vantage" {
			t.Errorf("service %s: healthcheck test %v, want [CMD vantage ...]", name, test)
		}
		if !strings.Contains(str(svc, "environment", "VANTAGE_GOSSIP_KEY"), "${VANTAGE_GOSSIP_KEY") {
			t.Errorf("service %s: VANTAGE_GOSSIP_KEY does not come from the environment / env file", name)
		}
		if !slices.Contains(strs(svc, "volumes"), "./compose/vantage.yaml:/etc/vantage/vantage.yaml:ro") {
			t.Errorf("service %s: compose/vantage.yaml is not mounted at /etc/vantage/vantage.yaml", name)
		}
		for _, p := range strs(svc, "ports") {
			if strings.HasSuffix(p, ":8080") {
				host := strings.TrimSuffix(p, ":8080")
				if prev, dup := hostPorts[host]; dup {
					t.Errorf("services %s and %s publish the same host port %s", prev, name, host)
				}
				hostPorts[host] = name
			}
		}
	}
	slices.Sort(nodes)
	if want := slices.Sorted(slices.Values(regions)); !slices.Equal(nodes, want) {
		t.Errorf("vantage services %v, want %v", nodes, want)
	}
	if len(hostPorts) != len(regions) {
		t.Errorf("host ports for the status pages %v, want one per node", hostPorts)
	}
	if len(others) == 0 {
		t.Error("no sample target service")
	}

	// The shared config: the three regions, lan gossip, and its checks
	// aimed at services of this compose file.
	cfg := decodeDocs(t, "compose/vantage.yaml")[0]
	if got := strs(cfg, "cluster", "regions"); !slices.Equal(got, regions) {
		t.Errorf("compose/vantage.yaml: cluster.regions %v, want %v", got, regions)
	}
	if g := str(cfg, "cluster", "gossip"); g != "lan" {
		t.Errorf("compose/vantage.yaml: cluster.gossip %q, want lan", g)
	}
	for _, c := range list(cfg, "checks") {
		target := str(c, "url") + str(c, "target")
		found := false
		for name := range services {
			found = found || strings.Contains(target, "//"+name+":") || strings.Contains(target, "//"+name+"/") ||
				strings.HasPrefix(target, name+":") || target == name
		}
		if !found {
			t.Errorf("compose/vantage.yaml: check %s targets %q, not a service of docker-compose.yml", str(c, "name"), target)
		}
	}
}

// TestComposeConfigValidates is `vantage validate --config
// deploy/compose/vantage.yaml`, and the same for the example config the
// image ships as its default.
func TestComposeConfigValidates(t *testing.T) {
	validate(t, "compose/vantage.yaml")
	validate(t, filepath.Join(repoRoot, "example.yaml"))
}

// ---------------------------------------------------------------- Dockerfile

type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// dockerInstructions parses a Dockerfile: comments dropped, continuation
// lines joined.
func dockerInstructions(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if l, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{start, strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := dockerInstructions(t, "Dockerfile")
	var froms []instruction
	final := -1
	for i, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in)
			final = i
		}
	}
	if len(froms) < 2 {
		t.Fatalf("%d FROM lines, want a multi-stage build", len(froms))
	}
	stageRe := regexp.MustCompile(`(?i)^(--platform=\S+\s+)?(\S+)\s+AS\s+(\S+)$`)
	m := stageRe.FindStringSubmatch(froms[0].args)
	if m == nil || !strings.HasPrefix(m[2], "golang:") {
		t.Errorf("first stage %q: want FROM golang:... AS name", froms[0].args)
	}
	builder := ""
	if m != nil {
		builder = m[3]
	}
	base := strings.Fields(froms[len(froms)-1].args)[0]
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("final stage from %q, want scratch or distroless static", base)
	}

	var buildRun string
	for _, in := range ins[:final] {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildRun = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "./cmd/vantage"} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("builder's go build %q lacks %q", buildRun, want)
		}
	}

	last := map[string]instruction{}
	var exposed []string
	var copies []string
	for _, in := range ins[final+1:] {
		last[in.cmd] = in
		switch in.cmd {
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "COPY":
			copies = append(copies, in.args)
		}
	}
	user := strings.Fields(last["USER"].args)
	if len(user) == 0 {
		t.Error("final stage has no USER")
	} else if u, _, _ := strings.Cut(user[0], ":"); u == "root" || u == "0" {
		t.Errorf("USER %s is root", user[0])
	} else if u != "65532" {
		t.Errorf("USER %s, want 65532", user[0])
	}
	for _, c := range copies {
		if !strings.Contains(c, "--from="+builder) {
			t.Errorf("final stage COPY %q not from the builder stage %q", c, builder)
		}
	}
	hc := last["HEALTHCHECK"].args
	if !strings.Contains(hc, `CMD ["vantage", "status", "--addr", "http://127.0.0.1:8080"`) {
		t.Errorf("HEALTHCHECK %q: want an exec-form `vantage status --addr http://127.0.0.1:8080`", hc)
	}
	for _, p := range []string{"8080", "7946/tcp", "7946/udp"} {
		if !slices.Contains(exposed, p) {
			t.Errorf("EXPOSE %v lacks %s", exposed, p)
		}
	}
	if v := last["VOLUME"].args; v != "/data" {
		t.Errorf("VOLUME %q, want /data", v)
	}
	if e := last["ENTRYPOINT"].args; e != `["vantage"]` {
		t.Errorf("ENTRYPOINT %s, want [\"vantage\"]", e)
	}
	if c := last["CMD"].args; c != `["run", "--config", "/etc/vantage/vantage.yaml", "--data", "/data"]` {
		t.Errorf("CMD %s", c)
	}
	// Files the builder copies out of the context.
	for _, f := range []string{"go.mod", "go.sum", "example.yaml", "cmd/vantage"} {
		if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
			t.Errorf("the Dockerfile needs %s: %v", f, err)
		}
	}
}

// TestStaticBinary runs the Dockerfile's build step as a plain command and
// checks the binary runs on scratch: no ELF interpreter, no shared library,
// and the version stamped through -ldflags.
func TestStaticBinary(t *testing.T) {
	bin := vantageBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a PT_INTERP program header: dynamically linked, will not run on scratch")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v (%v)", libs, err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("vantage version: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("vantage %s (commit %s,", testVersion, testCommit); !strings.HasPrefix(string(out), want) {
		t.Errorf("vantage version = %q, want prefix %q: -X main.version/main.commit do not land", out, want)
	}
}

// ---------------------------------------------------------------- systemd

func parseUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s: bad line %q", path, line)
				continue
			}
			kv[section+"."+k] = append(kv[section+"."+k], v)
		}
	}
	return kv
}

func TestSystemdUnit(t *testing.T) {
	const path = "systemd/vantage.service"
	u := parseUnit(t, path)
	for k, want := range map[string]string{
		"Service.ExecStart":               "/usr/local/bin/vantage run --config /etc/vantage/vantage.yaml --data ${STATE_DIRECTORY}",
		"Service.ExecReload":              "/bin/kill -HUP $MAINPID",
		"Service.DynamicUser":             "yes",
		"Service.StateDirectory":          "vantage",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.NoNewPrivileges":         "yes",
		"Service.AmbientCapabilities":     "CAP_NET_RAW",
		"Service.CapabilityBoundingSet":   "CAP_NET_RAW",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"Service.Restart":                 "on-failure",
		"Service.EnvironmentFile":         "-/etc/vantage/env",
		"Install.WantedBy":                "multi-user.target",
	} {
		if got := u[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !slices.Contains(u["Service.SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %q lacks @system-service", u["Service.SystemCallFilter"])
	}

	// systemd-analyze verify, with ExecStart pointed at an executable that
	// exists here (it checks the path).
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: unit not verified (apt-get install systemd)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "vantage.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(b, []byte("/usr/local/bin/vantage"), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Unknown keys and bad values are warnings (exit 0) naming the file.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, unit) {
			t.Errorf("systemd-analyze verify: %s", line)
		} else if strings.TrimSpace(line) != "" {
			t.Logf("systemd-analyze verify: %s", line)
		}
	}
}
