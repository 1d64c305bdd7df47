package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dfRow returns the fields of `system df`'s row for typ.
func dfRow(t *testing.T, df, typ string) []string {
	t.Helper()
	for _, l := range strings.Split(df, "\n") {
		if rest, ok := strings.CutPrefix(l, typ+" "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("no %s row in:\n%s", typ, df)
	return nil
}

// pruneFreed runs a prune and checks that what it reports freed is what
// du says the store lost.
func (e *env) pruneFreed(args ...string) string {
	e.t.Helper()
	before := du(e.t, e.root)
	out := e.kiln(args...)
	after := du(e.t, e.root)
	freed := reclaimed(out)
	if got := before - after; freed < 0 || abs(got-freed) > freed/100+8192 {
		e.t.Errorf("%v said %d bytes freed, du says %d\n%s", args, freed, got, out)
	}
	return out
}

func TestContainerPruneAndDiskUsage(t *testing.T) {
	e := newContainerEnv(t)
	bigID := strings.TrimSpace(e.kiln("create", "--name", "big", "bb", "sh", "-c", "head -c 3000000 /dev/urandom > /f"))
	e.kiln("start", "-a", "big")
	freshID := strings.TrimSpace(e.kiln("create", "--name", "fresh", "bb", "true"))
	liveID := strings.TrimSpace(e.kiln("run", "-d", "--name", "live", "-v", "used:/u", "bb", "sleep", "1000"))
	later := strings.TrimSpace(e.kiln("create", "--name", "later", "bb", "echo", "still here"))

	df := e.kiln("system", "df")
	if row := dfRow(t, df, "Containers"); strings.Join(row[:3], " ") != "4 1 3MB" || row[3] != "3MB" {
		t.Errorf("Containers row %v:\n%s", row, df)
	}
	// container prune: the stopped ones go, with their disk space.
	e.kiln("rm", later) // (kept for later: made again below)
	out := e.pruneFreed("container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:\n") || !strings.Contains(out, bigID) || !strings.Contains(out, freshID) || reclaimed(out) < 3000000 {
		t.Errorf("container prune:\n%s", out)
	}
	if q := e.kiln("ps", "-aq", "--no-trunc"); q != liveID+"\n" {
		t.Errorf("after container prune: %q", q)
	}
	later = strings.TrimSpace(e.kiln("create", "--name", "later", "bb", "echo", "still here"))

	// volume prune: anonymous unused volumes; -a: every unused one.
	e.kiln("run", "--rm", "-v", "data1:/d", "bb", "sh", "-c", "head -c 2000000 /dev/urandom > /d/x")
	e.kiln("run", "--name", "anonuser", "-v", "/anon", "bb", "sh", "-c", "head -c 1000000 /dev/urandom > /anon/x")
	anon := e.inspectF("{{range .Mounts}}{{.Name}}{{end}}", "anonuser")
	e.kiln("rm", "anonuser")
	if row := dfRow(t, e.kiln("system", "df"), "Local Volumes"); strings.Join(row[:2], " ") != "3 1" {
		t.Errorf("Local Volumes row %v", row)
	}
	out = e.pruneFreed("volume", "prune", "-f")
	if out != "Deleted Volumes:\n"+anon+"\n\n"+"Total reclaimed space: "+strings.TrimPrefix(out, "Deleted Volumes:\n"+anon+"\n\nTotal reclaimed space: ") || reclaimed(out) < 1000000 {
		t.Errorf("volume prune:\n%s", out)
	}
	out = e.pruneFreed("volume", "prune", "-f", "-a")
	if !strings.Contains(out, "\ndata1\n") || strings.Contains(out, "used") || reclaimed(out) < 2000000 {
		t.Errorf("volume prune -a:\n%s", out)
	}
	if ls := e.kiln("volume", "ls", "-q"); ls != "used\n" {
		t.Errorf("volumes left: %q", ls)
	}

	// rmi of an image containers use.
	bbID := strings.TrimSpace(e.kiln("inspect", "--type", "image", "--format", "{{.Id}}", "bb")) // not a container ID prefix
	r := e.run("", "rmi", "bb")
	if r.code == 0 || !strings.Contains(r.stderr, `conflict: unable to remove repository reference "bb" (must force) - container `) ||
		!strings.Contains(r.stderr, "is using its referenced image "+strings.TrimPrefix(bbID, "sha256:")[:12]) {
		t.Errorf("rmi of an image in use: %+v", r)
	}
	if r := e.run("", "rmi", bbID); r.code == 0 || !strings.Contains(r.stderr, "(cannot be forced) - image is being used by running container "+liveID[:12]) {
		t.Errorf("rmi by ID of an image a running container uses: %+v", r)
	}

	// image prune: dangling images; -a: every image no container uses.
	bigTar := filepath.Join(t.TempDir(), "big.tar")
	src := t.TempDir()
	if err := exec.Command("sh", "-c", "head -c 3000000 /dev/urandom > "+src+"/blob && tar -C "+src+" -cf "+bigTar+" blob").Run(); err != nil {
		t.Fatal(err)
	}
	e.kiln("import", bigTar, "bigimg")
	dangling := strings.TrimSpace(e.kiln("build", "-q", writeContext(t, map[string]string{"Dockerfile": "FROM bb\nRUN echo x > /x\n"})))
	if row := dfRow(t, e.kiln("system", "df"), "Images"); strings.Join(row[:2], " ") != "3 1" {
		t.Errorf("Images row %v", row)
	}
	out = e.pruneFreed("image", "prune", "-f")
	if !strings.Contains(out, "deleted: "+dangling) || strings.Contains(out, "bigimg") {
		t.Errorf("image prune:\n%s", out)
	}
	out = e.pruneFreed("image", "prune", "-a", "-f")
	if !strings.Contains(out, "untagged: bigimg:latest\ndeleted: sha256:") || strings.Contains(out, bbID) || reclaimed(out) < 3000000 {
		t.Errorf("image prune -a:\n%s", out)
	}
	// -f untags only: the image stays for its containers, which still run.
	if out := e.kiln("rmi", "-f", "bb"); out != "Untagged: bb:latest\n" {
		t.Errorf("rmi -f of an image in use: %q", out)
	}
	e.pruneFreed("image", "prune", "-a", "-f")
	if out := e.kiln("start", "-a", later); out != "still here\n" {
		t.Errorf("a container whose image was untagged and pruned: %q", out)
	}
	if out := e.kiln("exec", "live", "echo", "ok"); out != "ok\n" {
		t.Errorf("exec after prune: %q", out)
	}

	// system prune -a --volumes: everything unused goes, measured.
	e.kiln("stop", "-t", "0", "live")
	out = e.pruneFreed("system", "prune", "-a", "--volumes", "-f")
	for _, want := range []string{"Deleted Containers:", liveID, later, "Deleted Images:", "deleted: " + bbID} {
		if !strings.Contains(out, want) {
			t.Errorf("system prune lacks %q:\n%s", want, out)
		}
	}
	df = e.kiln("system", "df")
	for _, typ := range []string{"Images", "Containers"} {
		if row := dfRow(t, df, typ); strings.Join(row, " ") != "0 0 0B 0B (0%)" {
			t.Errorf("%s after system prune: %v", typ, row)
		}
	}
	// (the named volume is not anonymous: system prune --volumes keeps it)
	if row := dfRow(t, df, "Local Volumes"); strings.Join(row[:2], " ") != "1 0" {
		t.Errorf("Local Volumes after system prune: %v", row)
	}
	if v := e.kiln("system", "df", "-v"); !strings.Contains(v, "Local Volumes space usage:") || !strings.Contains(v, "\nused ") {
		t.Errorf("df -v:\n%s", v)
	}
	if _, err := os.Stat(filepath.Join(e.root, "containers", liveID)); err == nil {
		t.Errorf("the pruned container's directory is still there")
	}
}
