// Strict schema check of the Kubernetes manifests (docs/deploy.md#validation).
//
// Every document that `kustomize build` prints for the base, the backing services
// and each overlay (plus the patch the seaweedfs overlay applies to KFP's own
// Deployment) is decoded into its k8s.io/api type the way the API server's strict
// field validation does: sigs.k8s.io/json.UnmarshalStrict refuses unknown fields,
// duplicate fields and fields whose case differs from the API's. A kind this test
// does not know fails too, so a new kind is added here on purpose. Names and labels
// are checked with apimachinery's validators.
//
// Run by tests/deploy/test_k8s.py with KUSTOMIZE set to the pinned CLI
// (deploy/k8s/kustomize.sh); on its own:
//
//	KUSTOMIZE=$(bash deploy/k8s/kustomize.sh) go test ./... (in this directory)
package schematest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	goyaml "go.yaml.in/yaml/v2"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is what every typed API object offers: its metadata.
type object interface{ GetObjectMeta() metav1.Object }

// The kinds the manifests may use, by apiVersion/kind.
var kinds = map[string]func() object{
	"v1/ConfigMap":                       func() object { return &corev1.ConfigMap{} },
	"v1/Secret":                          func() object { return &corev1.Secret{} },
	"v1/Service":                         func() object { return &corev1.Service{} },
	"v1/ServiceAccount":                  func() object { return &corev1.ServiceAccount{} },
	"v1/PersistentVolumeClaim":           func() object { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                 func() object { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                func() object { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                       func() object { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":      func() object { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() object { return &networkingv1.NetworkPolicy{} },
}

// builds are the kustomization directories, relative to deploy/k8s.
var builds = []string{"base", "backing", "overlays/kubeflow", "overlays/seaweedfs"}

func k8sDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func kustomizeBuild(t *testing.T, dir string) []byte {
	t.Helper()
	bin := os.Getenv("KUSTOMIZE")
	if bin == "" {
		t.Fatal("KUSTOMIZE is not set: run through tests/deploy/test_k8s.py, or KUSTOMIZE=$(bash deploy/k8s/kustomize.sh) go test ./...")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "build", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr.String())
	}
	return out
}

// documents splits a multi-document YAML stream, each document re-marshalled on its own.
func documents(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	var docs [][]byte
	dec := goyaml.NewDecoder(bytes.NewReader(stream))
	for {
		var doc goyaml.MapSlice
		err := dec.Decode(&doc)
		if err == io.EOF {
			return docs
		}
		if err != nil {
			t.Fatalf("YAML: %v", err)
		}
		if len(doc) == 0 {
			continue
		}
		raw, err := goyaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, raw)
	}
}

// strictDecode decodes one YAML document into its typed object, refusing anything
// the API types do not define; it returns a description for messages.
func strictDecode(doc []byte) (string, object, error) {
	jsonDoc, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return "", nil, fmt.Errorf("YAML to JSON: %w", err)
	}
	var tm metav1.TypeMeta
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(jsonDoc, &tm); err != nil {
		return "", nil, err
	}
	key := tm.APIVersion + "/" + tm.Kind
	newObject, ok := kinds[key]
	if !ok {
		return key, nil, fmt.Errorf("unknown kind %q (add it to kinds in schema_test.go if it is meant)", key)
	}
	obj := newObject()
	strictErrs, err := k8sjson.UnmarshalStrict(jsonDoc, obj)
	if err != nil {
		return key, nil, err
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, 0, len(strictErrs))
		for _, e := range strictErrs {
			msgs = append(msgs, e.Error())
		}
		return key, nil, fmt.Errorf("strict decoding: %s", strings.Join(msgs, "; "))
	}
	return key + " " + obj.GetObjectMeta().GetName(), obj, nil
}

func checkMeta(obj object) []string {
	meta := obj.GetObjectMeta()
	var problems []string
	problems = append(problems, validation.IsDNS1123Subdomain(meta.GetName())...)
	for k, v := range meta.GetLabels() {
		problems = append(problems, validation.IsQualifiedName(k)...)
		problems = append(problems, validation.IsValidLabelValue(v)...)
	}
	return problems
}

func checkDocuments(t *testing.T, docs [][]byte) int {
	t.Helper()
	for i, doc := range docs {
		what, obj, err := strictDecode(doc)
		if err != nil {
			t.Errorf("document %d (%s): %v", i, what, err)
			continue
		}
		for _, p := range checkMeta(obj) {
			t.Errorf("%s: %s", what, p)
		}
	}
	return len(docs)
}

func TestEveryBuildDecodesStrictly(t *testing.T) {
	for _, build := range builds {
		t.Run(build, func(t *testing.T) {
			docs := documents(t, kustomizeBuild(t, filepath.Join(k8sDir(t), build)))
			if n := checkDocuments(t, docs); n == 0 {
				t.Fatalf("kustomize build %s printed no object", build)
			}
		})
	}
}

// The patch for KFP's SeaweedFS Deployment is applied with kubectl, not built: check it too.
func TestSeaweedfsPatchDecodesStrictly(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(k8sDir(t), "overlays/seaweedfs/seaweedfs-notification-patch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if n := checkDocuments(t, documents(t, raw)); n != 1 {
		t.Fatalf("want one document, got %d", n)
	}
}

// The checker itself refuses what it must: a misspelt field, a field of the wrong
// case, a duplicate field and an unknown kind.
func TestStrictDecodingRefusesMistakes(t *testing.T) {
	bad := map[string]string{
		"unknown field": "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {selectr: {a: b}}\n",
		"wrong case":    "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {Selector: {a: b}}\n",
		"duplicate":     "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: ClusterIP, type: NodePort}\n",
		"unknown kind":  "apiVersion: example.org/v1\nkind: Widget\nmetadata: {name: a}\n",
		"wrong type":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: two}\n",
		"nested typo":   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {template: {spec: {containers: [{name: a, image: b, livenessProbe: {httpGet: {path: /, port: 80}, periodSecond: 5}}]}}}\n",
	}
	for name, doc := range bad {
		if _, _, err := strictDecode([]byte(doc)); err == nil {
			t.Errorf("%s: accepted %q", name, doc)
		}
	}
	good := "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {selector: {a: b}}\n"
	if _, _, err := strictDecode([]byte(good)); err != nil {
		t.Errorf("refused a valid Service: %v", err)
	}
}
