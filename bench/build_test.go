package main

import (
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

// TestReleaseBuildStatic: the release build is a static binary without a
// symbol table (no ELF interpreter, no libc mapped into the node), the dev
// build is go build's default.
func TestReleaseBuildStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a build of cmd/vantage")
	}
	t.Chdir("..")
	bin, err := releaseBuild.run(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the release build has an ELF interpreter: not static")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("the release build has a symbol table: not stripped")
	}
	if _, err := buildNamed("dev"); err != nil {
		t.Error(err)
	}
	if _, err := buildNamed("debug"); err == nil || !strings.Contains(err.Error(), "release or dev") {
		t.Errorf("buildNamed(debug) = %v, want an error naming the builds", err)
	}
}
