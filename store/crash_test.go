package store

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const crashEnv = "VANTAGE_STORE_CRASH_DB"

// TestHelperWriter is the child process of TestCrashSafety: it writes
// results as fast as it can and prints "ACK n" after every Flush, n being
// the number of results this process has committed so far. It never
// returns on its own; the parent kills it.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	s, err := Open(path, Options{Logger: discardLogger, BatchSize: 200, QueueSize: 1024, FlushInterval: 5 * time.Millisecond, Now: newClock(t0).Now})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	regions := []string{"eu-west", "us-east", "ap-south"}
	// Background writes that nobody waits for keep the writer busy, so the
	// kill lands inside a transaction.
	go func() {
		tick := time.NewTicker(time.Millisecond) // pacing, ~3k results/s
		for n := 0; ; n++ {
			if n%3 == 0 {
				<-tick.C
			}
			s.Add(Result{Node: "bg", Region: regions[n%3], Check: "bg", Time: t0.Add(time.Duration(n) * time.Second),
				OK: n%5 != 0, Latency: time.Duration(n%1000) * time.Millisecond})
		}
	}()
	var committed int
	for i := 0; ; i++ {
		batch := make([]Result, 300)
		for j := range batch {
			n := i*len(batch) + j
			batch[j] = Result{
				Node: "node-" + regions[n%3], Region: regions[n%3], Check: fmt.Sprintf("check-%d", n%7),
				Time: t0.Add(time.Duration(n) * 50 * time.Millisecond), OK: n%13 != 0,
				Latency: time.Duration(1+n%5000) * 100 * time.Microsecond, Code: "", Message: strings.Repeat("x", n%40),
			}
		}
		s.AddBatch(batch)
		// a few single adds that stay unflushed
		for j := 0; j < 17; j++ {
			s.Add(batch[j])
		}
		if err := s.Flush(context.Background()); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		committed += len(batch) + 17
		fmt.Printf("ACK %d\n", committed)
	}
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	var base int64 // rows in the database before the current child started
	for cycle := 0; cycle < 4; cycle++ {
		wantAcks := 3 + cycle
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan int64)
		go func() {
			defer close(acks)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if n, ok := strings.CutPrefix(line, "ACK "); ok {
					v, _ := strconv.ParseInt(n, 10, 64)
					select {
					case acks <- v:
					case <-ctx.Done():
						return
					}
				} else if strings.HasPrefix(line, "ERR") {
					t.Errorf("child: %s", line)
				}
			}
		}()
		var last int64
		for got := 0; got < wantAcks; got++ {
			select {
			case v, ok := <-acks:
				if !ok {
					cancel()
					cmd.Wait()
					t.Fatalf("cycle %d: child exited after %d acks", cycle, got)
				}
				last = v
			case <-ctx.Done():
				t.Fatalf("cycle %d: no ack before the deadline", cycle)
			}
		}
		// Kill it mid-write: it is busy writing the next batch.
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		cancel()
		for range acks { // drain what it printed before dying
		}

		// The database must be intact before anything else touches it.
		db, err := sql.Open("sqlite", sqliteDSN(path, "_pragma=busy_timeout(5000)"))
		if err != nil {
			t.Fatal(err)
		}
		var integrity string
		if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
			t.Fatalf("cycle %d: integrity_check %q %v", cycle, integrity, err)
		}
		db.Close()

		s, err := Open(path, Options{Logger: discardLogger, Now: newClock(t0).Now})
		if err != nil {
			t.Fatalf("cycle %d: reopen: %v", cycle, err)
		}
		rows := assertRollupTotals(t, s) // rollups == raw rows: same transactions
		if rows < base+last {
			t.Fatalf("cycle %d: %d rows, but %d were acknowledged (base %d)", cycle, rows, base+last, base)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("cycle %d: acknowledged %d, found %d new rows", cycle, last, rows-base)
		base = rows
	}
}
