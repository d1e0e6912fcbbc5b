// yaml2json prints the documents of a YAML stream on stdin as one JSON array, with
// duplicate keys refused, so that tests/deploy (Python, no YAML library in the
// project's requirements) can check the kustomize output and the compose file.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	goyaml "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "yaml2json:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	stream, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	docs := []json.RawMessage{}
	dec := goyaml.NewDecoder(bytes.NewReader(stream))
	for {
		var doc goyaml.MapSlice
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(doc) == 0 {
			continue
		}
		raw, err := goyaml.Marshal(doc)
		if err != nil {
			return err
		}
		j, err := yaml.YAMLToJSONStrict(raw)
		if err != nil {
			return err
		}
		docs = append(docs, j)
	}
	return json.NewEncoder(out).Encode(docs)
}
