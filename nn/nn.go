// Package nn builds layers from autograd operations and keeps their
// parameters and buffers under torchvision's dotted names
// ("layer1.0.conv1.weight"), so state exchanges with PyTorch by name.
package nn

import (
	"fmt"

	"github.com/simclr-go/simclr/autograd"
	"github.com/simclr-go/simclr/tensor"
)

// Param is a named trainable tensor.
type Param struct {
	Name string
	*autograd.Var
	// NoDecay marks batch-norm parameters and biases, which SimCLR excludes
	// from weight decay and from LARS's trust-ratio adaptation.
	NoDecay bool
}

// Buffer is a named tensor that is state but not trained (running
// statistics).
type Buffer struct {
	Name   string
	Tensor *tensor.Tensor
}

// Registry collects parameters and buffers in creation order. Sub-registries
// share the collection and extend the name prefix.
type Registry struct {
	prefix string
	seed   uint64
	init   Init
	store  *store
}

// Init names how layers draw their initial weights.
type Init string

// The initialisations layers know.
const (
	// InitTorchvision is torchvision's ResNet initialisation: Kaiming
	// normal (fan out) for convolutions, torch.nn.Linear's uniform for
	// linear layers. The zero value.
	InitTorchvision Init = ""
	// InitOfficial is the official SimCLR code's (google-research/simclr,
	// tf2/resnet.py and tf2/model.py): fan-in variance scaling (truncated
	// normal, variance 1/fan_in) for convolutions, N(0, 0.01²) for linear
	// layers, zero biases.
	InitOfficial Init = "official"
)

// ParseInit reads an initialisation name: "torchvision" (or "") or
// "official".
func ParseInit(s string) (Init, error) {
	switch s {
	case "", "torchvision":
		return InitTorchvision, nil
	case string(InitOfficial):
		return InitOfficial, nil
	}
	return "", fmt.Errorf("initialisation %q: want torchvision or official", s)
}

// WithInit returns a registry sharing r's collection whose layers (and
// those of its sub-registries) initialise as i says.
func (r *Registry) WithInit(i Init) *Registry {
	c := *r
	c.init = i
	return &c
}

type store struct {
	params   []*Param
	buffers  []*Buffer
	counters []*Counter
	bns      []*BatchNorm
	names    map[string]bool
}

// Counter is named integer state (batch norm's num_batches_tracked).
type Counter struct {
	Name  string
	Value int64
}

// NewRegistry returns an empty registry whose initialisations derive from
// seed and each parameter's full name, so a parameter's initial value does
// not depend on what was created before it.
func NewRegistry(seed uint64) *Registry {
	return &Registry{seed: seed, store: &store{names: map[string]bool{}}}
}

// Sub returns a registry that prefixes names with name + ".".
func (r *Registry) Sub(name string) *Registry {
	return &Registry{prefix: r.prefix + name + ".", seed: r.seed, init: r.init, store: r.store}
}

// Name is the full name of a local name.
func (r *Registry) Name(local string) string { return r.prefix + local }

// RNG is the initialisation stream of the parameter with the local name.
func (r *Registry) RNG(local string) *tensor.RNG { return tensor.NewRNG(r.seed, "init/"+r.Name(local)) }

func (r *Registry) claim(name string) {
	if r.store.names[name] {
		panic(fmt.Sprintf("nn: %q registered twice", name))
	}
	r.store.names[name] = true
}

// Param registers t as a trainable parameter.
func (r *Registry) Param(local string, t *tensor.Tensor, noDecay bool) *Param {
	name := r.Name(local)
	r.claim(name)
	p := &Param{Name: name, Var: autograd.NewParam(t), NoDecay: noDecay}
	r.store.params = append(r.store.params, p)
	return p
}

// Buffer registers t as non-trainable state.
func (r *Registry) Buffer(local string, t *tensor.Tensor) *Buffer {
	name := r.Name(local)
	r.claim(name)
	b := &Buffer{Name: name, Tensor: t}
	r.store.buffers = append(r.store.buffers, b)
	return b
}

// Counter registers an integer state value.
func (r *Registry) Counter(local string) *Counter {
	name := r.Name(local)
	r.claim(name)
	c := &Counter{Name: name}
	r.store.counters = append(r.store.counters, c)
	return c
}

// Counters lists every counter in creation order.
func (r *Registry) Counters() []*Counter { return r.store.counters }

// Params lists every parameter in creation order.
func (r *Registry) Params() []*Param { return r.store.params }

// Buffers lists every buffer in creation order.
func (r *Registry) Buffers() []*Buffer { return r.store.buffers }

// NumParams counts trainable values.
func (r *Registry) NumParams() int {
	n := 0
	for _, p := range r.store.params {
		n += p.Value.Len()
	}
	return n
}

// State returns every parameter and buffer tensor by full name.
func (r *Registry) State() map[string]*tensor.Tensor {
	m := make(map[string]*tensor.Tensor, len(r.store.params)+len(r.store.buffers))
	for _, p := range r.store.params {
		m[p.Name] = p.Value
	}
	for _, b := range r.store.buffers {
		m[b.Name] = b.Tensor
	}
	return m
}

// Conv2d is a 2-D convolution layer with OIHW weights.
type Conv2d struct {
	Weight, Bias *Param
	Opts         autograd.ConvOpts
}

// NewConv2d registers "weight" (and "bias") under r, initialised as
// torchvision's ResNets do (Kaiming normal, fan out; zero bias), or with
// InitOfficial by fan-in variance scaling.
func NewConv2d(r *Registry, in, out, kernel int, opts autograd.ConvOpts, bias bool) *Conv2d {
	groups := max(opts.Groups, 1)
	w := tensor.New(out, in/groups, kernel, kernel)
	if r.init == InitOfficial {
		r.RNG("weight").VarianceScalingFanIn(w)
	} else {
		r.RNG("weight").KaimingNormalFanOut(w)
	}
	c := &Conv2d{Weight: r.Param("weight", w, false), Opts: opts}
	if bias {
		c.Bias = r.Param("bias", tensor.New(out), true)
	}
	return c
}

// Forward applies the convolution to x[N,H,W,C].
func (c *Conv2d) Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	var b *autograd.Var
	if c.Bias != nil {
		b = c.Bias.Var
	}
	return t.Conv2D(x, c.Weight.Var, b, c.Opts)
}

// BatchNorm normalises over every dimension but channels (the last), as
// PyTorch's BatchNorm1d and BatchNorm2d do.
type BatchNorm struct {
	Weight, Bias *Param
	Stats        autograd.BatchNormStats
	// Tracked counts training batches, as torchvision's num_batches_tracked.
	Tracked *Counter
	// Reducer, when set, makes training use the statistics of the batch
	// of every process of a data-parallel group (autograd.BatchNormGlobal);
	// nil is this process's batch alone.
	Reducer autograd.Reducer
	// FixedShift marks a batch norm whose Bias is a buffer held at zero
	// (NewBatchNormScaleOnly), not a trained parameter.
	FixedShift bool
}

// BatchNorms lists every batch norm layer in creation order.
func (r *Registry) BatchNorms() []*BatchNorm { return r.store.bns }

// NewBatchNorm registers weight (gamma = 1, or 0 with zeroInit), bias,
// running_mean and running_var under r; eps 1e-5 and momentum 0.1 as in
// PyTorch.
func NewBatchNorm(r *Registry, channels int, zeroInit bool) *BatchNorm {
	gamma := tensor.New(channels)
	if !zeroInit {
		for i := range gamma.Data {
			gamma.Data[i] = 1
		}
	}
	runVar := tensor.New(channels)
	for i := range runVar.Data {
		runVar.Data[i] = 1
	}
	bn := &BatchNorm{
		Weight: r.Param("weight", gamma, true),
		Bias:   r.Param("bias", tensor.New(channels), true),
		Stats: autograd.BatchNormStats{
			Mean:     r.Buffer("running_mean", tensor.New(channels)).Tensor,
			Var:      r.Buffer("running_var", runVar).Tensor,
			Momentum: 0.1,
			Eps:      1e-5,
		},
		Tracked: r.Counter("num_batches_tracked"),
	}
	r.store.bns = append(r.store.bns, bn)
	return bn
}

// NewBatchNormScaleOnly is NewBatchNorm without a learned shift (the
// official SimCLR head's last batch norm, Keras's center=False): "bias" is
// registered as a buffer of zeros, saved and loaded under the usual name
// (so torch's BatchNorm1d still loads it) but never trained.
func NewBatchNormScaleOnly(r *Registry, channels int) *BatchNorm {
	gamma := tensor.New(channels)
	for i := range gamma.Data {
		gamma.Data[i] = 1
	}
	runVar := tensor.New(channels)
	for i := range runVar.Data {
		runVar.Data[i] = 1
	}
	beta := r.Buffer("bias", tensor.New(channels))
	bn := &BatchNorm{
		Weight: r.Param("weight", gamma, true),
		Bias:   &Param{Name: beta.Name, Var: autograd.NewParam(beta.Tensor), NoDecay: true},
		Stats: autograd.BatchNormStats{
			Mean:     r.Buffer("running_mean", tensor.New(channels)).Tensor,
			Var:      r.Buffer("running_var", runVar).Tensor,
			Momentum: 0.1,
			Eps:      1e-5,
		},
		Tracked:    r.Counter("num_batches_tracked"),
		FixedShift: true,
	}
	r.store.bns = append(r.store.bns, bn)
	return bn
}

// Forward normalises x, then applies ReLU when relu is set (fused).
func (b *BatchNorm) Forward(t *autograd.Tape, x *autograd.Var, relu bool) *autograd.Var {
	if t.Train {
		b.Tracked.Value++
	}
	if b.Reducer != nil {
		return t.BatchNormGlobal(x, b.Weight.Var, b.Bias.Var, &b.Stats, relu, b.Reducer)
	}
	return t.BatchNorm(x, b.Weight.Var, b.Bias.Var, &b.Stats, relu)
}

// Linear is a fully connected layer with [out, in] weights.
type Linear struct {
	Weight, Bias *Param
}

// NewLinear registers "weight" (and "bias") initialised as torch.nn.Linear,
// or with InitOfficial as N(0, 0.01²) with a zero bias.
func NewLinear(r *Registry, in, out int, bias bool) *Linear {
	w := tensor.New(out, in)
	var b *tensor.Tensor
	if bias {
		b = tensor.New(out)
	}
	if r.init == InitOfficial {
		r.RNG("weight").FillNormal(w, 0.01)
	} else {
		r.RNG("weight").KaimingUniformLinear(w, b)
	}
	l := &Linear{Weight: r.Param("weight", w, false)}
	if bias {
		l.Bias = r.Param("bias", b, true)
	}
	return l
}

// Forward computes x w^T + b for x[M, in].
func (l *Linear) Forward(t *autograd.Tape, x *autograd.Var) *autograd.Var {
	var b *autograd.Var
	if l.Bias != nil {
		b = l.Bias.Var
	}
	return t.Linear(x, l.Weight.Var, b)
}
