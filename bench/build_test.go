package main

import (
	"debug/buildinfo"
	"debug/elf"
	"os"
	"strings"
	"testing"
)

// TestReleaseBuildAsDockerfile: the bench builds vantage with the
// environment and flags of deploy/Dockerfile's builder, so its figures are
// those of the released binary.
func TestReleaseBuildAsDockerfile(t *testing.T) {
	b, err := os.ReadFile("../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var run string // the builder's RUN with go build, continuation lines joined
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "RUN ") {
			continue
		}
		cmd := lines[i]
		for strings.HasSuffix(strings.TrimSpace(cmd), `\`) && i+1 < len(lines) {
			i++
			cmd = strings.TrimSuffix(strings.TrimSpace(cmd), `\`) + " " + strings.TrimSpace(lines[i])
		}
		if strings.Contains(cmd, "go build") {
			run = cmd
		}
	}
	if run == "" {
		t.Fatal("deploy/Dockerfile has no RUN with go build")
	}
	var want []string
	want = append(want, releaseBuild.env...)
	for i := 0; i < len(releaseBuild.flags); i++ {
		f := releaseBuild.flags[i]
		if f == "-ldflags" && i+1 < len(releaseBuild.flags) {
			i++
			f += ` "` + releaseBuild.flags[i]
		}
		want = append(want, f)
	}
	for _, w := range want {
		if !strings.Contains(run, w) {
			t.Errorf("the bench's release build has %q, deploy/Dockerfile's builder does not: %s", w, run)
		}
	}
}

// TestReleaseBuildSettings: the release build is made with those
// settings, as the binary records them (go version -m, the ELF sections).
func TestReleaseBuildSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a build of cmd/vantage")
	}
	t.Chdir("..")
	bin, err := releaseBuild.run(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range info.Settings {
		got[s.Key] = s.Value
	}
	for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if got[k] != v {
			t.Errorf("release build: %s=%q, want %q", k, got[k], v)
		}
	}
	// -trimpath leaves -ldflags out of the build info: -s shows as no
	// symbol table.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Section(".symtab") != nil {
		t.Error("release build: a symbol table, want none (-ldflags -s)")
	}
	if _, err := buildNamed("dev"); err != nil {
		t.Error(err)
	}
	if _, err := buildNamed("debug"); err == nil || !strings.Contains(err.Error(), "release or dev") {
		t.Errorf("buildNamed(debug) = %v, want an error naming the builds", err)
	}
}
