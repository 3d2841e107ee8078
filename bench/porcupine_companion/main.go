// Command porcupine_companion checks a clew JSONL cas-register history (as written by
// bench/lin_histories.py: one op per line with index, time, type, process, f, value, key)
// with Porcupine's etcd model, partitioned by key, and prints one JSON line:
//
//	{"valid": true|false|"unknown", "seconds": <CheckEventsTimeout>, "parse_seconds": <reading>}
//
// It is bench/linear_grid.py's yardstick (--porcupine PATH). The model is the one in
// Porcupine's own tests (etcdModel in porcupine_test.go), restated here because test code
// is not importable; nil is -1000000 as there. Events follow the file's order; an
// invocation with no ok/fail completion (info, or none) returns at the end of the history
// with an unknown output, as Porcupine's etcd log parser does for timed-out ops; a failed
// read or write never happened and is left out; a failed cas observed its comparison fail.
//
// Build (offline; see bench/porcupine_companion/README.md).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

const nilValue = -1000000

type input struct {
	op   uint8 // 0 read, 1 write, 2 cas
	arg1 int
	arg2 int
}

type output struct {
	ok      bool
	exists  bool
	value   int
	unknown bool
}

var model = porcupine.Model{
	PartitionEvent: partitionByKey,
	Init:           func() interface{} { return nilValue },
	Step: func(state, in, out interface{}) (bool, interface{}) {
		st := state.(int)
		inp := in.(input)
		o := out.(output)
		switch inp.op {
		case 0:
			ok := (!o.exists && st == nilValue) || (o.exists && st == o.value) || o.unknown
			return ok, state
		case 1:
			return true, inp.arg1
		default:
			ok := (inp.arg1 == st && o.ok) || (inp.arg1 != st && !o.ok) || o.unknown
			if inp.arg1 == st {
				return ok, inp.arg2
			}
			return ok, st
		}
	},
}

// The key of each event travels in its Metadata.
func partitionByKey(events []porcupine.Event) [][]porcupine.Event {
	index := map[int]int{}
	var parts [][]porcupine.Event
	for _, e := range events {
		k := e.Metadata.(int)
		i, seen := index[k]
		if !seen {
			i = len(parts)
			index[k] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], e)
	}
	return parts
}

type record struct {
	Type    string          `json:"type"`
	Process int             `json:"process"`
	F       string          `json:"f"`
	Value   json.RawMessage `json:"value"`
	Key     int             `json:"key"`
}

func intOrNil(raw json.RawMessage) (int, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nilValue, false, nil
	}
	var v int
	err := json.Unmarshal(raw, &v)
	return v, true, err
}

func readHistory(path string) ([]porcupine.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// Each invocation's completion, matched by process.
	completion := make([]int, len(recs))
	invocation := make([]int, len(recs))
	open := map[int]int{}
	for i, r := range recs {
		completion[i], invocation[i] = -1, -1
		if r.Type == "invoke" {
			open[r.Process] = i
		} else if j, ok := open[r.Process]; ok {
			completion[j], invocation[i] = i, j
			delete(open, r.Process)
		}
	}
	var events []porcupine.Event
	var atEnd []porcupine.Event
	idOf := map[int]int{}
	for i, r := range recs {
		if r.Type == "invoke" {
			c := completion[i]
			done := c >= 0 && (recs[c].Type == "ok" || recs[c].Type == "fail")
			if done && recs[c].Type == "fail" && r.F != "cas" {
				continue // never happened
			}
			var in input
			switch r.F {
			case "read":
				in = input{op: 0}
			case "write":
				v, _, err := intOrNil(r.Value)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: write value: %v", path, i+1, err)
				}
				in = input{op: 1, arg1: v}
			case "cas":
				var pair []json.RawMessage
				if err := json.Unmarshal(r.Value, &pair); err != nil || len(pair) != 2 {
					return nil, fmt.Errorf("%s:%d: cas value must be [from, to]", path, i+1)
				}
				from, _, err1 := intOrNil(pair[0])
				to, _, err2 := intOrNil(pair[1])
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("%s:%d: cas value must be integers or null", path, i+1)
				}
				in = input{op: 2, arg1: from, arg2: to}
			default:
				return nil, fmt.Errorf("%s:%d: unknown f %q", path, i+1, r.F)
			}
			id := len(idOf)
			idOf[i] = id
			events = append(events, porcupine.Event{ClientId: r.Process, Kind: porcupine.CallEvent, Value: in, Id: id, Metadata: r.Key})
			if !done {
				atEnd = append(atEnd, porcupine.Event{ClientId: r.Process, Kind: porcupine.ReturnEvent, Value: output{unknown: true}, Id: id, Metadata: r.Key})
			}
			continue
		}
		id, kept := idOf[invocation[i]]
		if !kept || (r.Type != "ok" && r.Type != "fail") {
			continue
		}
		var out output
		switch r.F {
		case "read":
			v, exists, err := intOrNil(r.Value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: read value: %v", path, i+1, err)
			}
			out = output{exists: exists, value: v}
		case "cas":
			out = output{ok: r.Type == "ok"}
		}
		events = append(events, porcupine.Event{ClientId: r.Process, Kind: porcupine.ReturnEvent, Value: out, Id: id, Metadata: r.Key})
	}
	return append(events, atEnd...), nil
}

func main() {
	timeout := flag.Float64("timeout", 60, "seconds before the check gives up (unknown)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: porcupine_companion [-timeout SECONDS] HISTORY.jsonl")
		os.Exit(254)
	}
	t0 := time.Now()
	events, err := readHistory(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(254)
	}
	parse := time.Since(t0).Seconds()
	t1 := time.Now()
	res := porcupine.CheckEventsTimeout(model, events, time.Duration(*timeout*float64(time.Second)))
	secs := time.Since(t1).Seconds()
	var valid interface{} = "unknown"
	switch res {
	case porcupine.Ok:
		valid = true
	case porcupine.Illegal:
		valid = false
	}
	out, _ := json.Marshal(map[string]interface{}{"valid": valid, "seconds": secs, "parse_seconds": parse})
	fmt.Println(string(out))
}
