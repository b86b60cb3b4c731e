package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/simclr-go/simclr/data"
	"github.com/simclr-go/simclr/selection"
	"github.com/simclr-go/simclr/train"
)

// semiFlags are the settings of simclr semi.
type semiFlags struct {
	split          splitFlags
	checkpoint     string
	pretrainConfig string
	fractions      string
	selectMethod   string
	budget         int
	selector       int
	ftEpochs       int
	ftBatch        int
	distillEpochs  int
	distillBatch   int
	alpha          float64
	temperature    float64
	studentScratch bool
	noBaseline     bool
	recipe         string
	alphaOn        string
	evalView       string
	given          func(name string) bool // whether the command line gave a flag
	out            string
	asJSON         bool
	quiet          bool
}

// semiRow is one label fraction's results.
type semiRow struct {
	Fraction   float64  `json:"fraction"`
	Selected   string   `json:"selected,omitempty"` // the select method that chose the labelled images
	Labelled   int      `json:"labelled"`
	Supervised *float64 `json:"supervised_top1,omitempty"`
	Teacher    float64  `json:"teacher_top1"`
	Student    float64  `json:"student_top1"`
	TeacherOut string   `json:"teacher"`
	StudentOut string   `json:"student"`
}

// semiReport is what simclr semi writes to OUT/semi.json.
type semiReport struct {
	Checkpoint string    `json:"checkpoint"`
	Data       string    `json:"data"`
	Rows       []semiRow `json:"results"`
	// The counts used: pretraining steps done (when pretrained here),
	// training images (all unlabelled for distillation) and test images.
	PretrainSteps int      `json:"pretrain_steps,omitempty"`
	TrainImages   int      `json:"train_images"`
	TestImages    int      `json:"test_images"`
	Commands      []string `json:"commands"`
	Seconds       float64  `json:"seconds"`
}

func semiCmd(g *globalFlags) *cobra.Command {
	f := semiFlags{fractions: "0.01,0.1", ftEpochs: 30, ftBatch: 64, distillEpochs: 8, distillBatch: 256, alpha: 0.5, out: "runs/semi"}
	c := &cobra.Command{
		Use:   "semi",
		Short: "SimCLRv2's semi-supervised recipe in one go: pretrain, fine-tune on few labels, distill",
		Long: `Run SimCLRv2's three stages and report them together:

 1. pretrain with the YAML settings of --pretrain-config (the keys of simclr
    pretrain --config; --data, --val, --limit, --seed and the output folder
    OUT/pretrain are set here), or start from --checkpoint. An unfinished
    OUT/pretrain is resumed.
 2. for each label fraction: fine-tune the whole network on that
    class-balanced fraction (simclr finetune), the teacher (with --select:
    on the --budget images simclr select chose, OUT/picks-METHOD-B.txt,
    instead of any fraction); and, unless
    --no-baseline, train the same network from a random initialisation on
    the same labels only, the supervised baseline.
 3. distill the teacher on all training images (their labels unused) into a
    student started from the pretrained encoder (--student-scratch: from a
    random one), also learning the labelled fraction (simclr distill).

Prints a table of test top-1 per fraction and writes OUT/semi.json,
OUT/report.md (the table and the commands that made it) and OUT/report.html
(the table, the settings, links to each stage's report); the teachers and
students are kept as OUT/teacher-F.safetensors and OUT/student-F.safetensors.

` + datasetHelp,
		Example: `  simclr semi --data cifar10 --val 5000 --pretrain-config cifar.yaml --out runs/semi
  simclr semi --data cifar10 --val 5000 --checkpoint runs/cifar/checkpoint.safetensors --fractions 0.1`,
		Args: cobra.NoArgs,
		RunE: interruptible(func(cmd *cobra.Command, _ []string) error {
			f.given = cmd.Flags().Changed
			return runSemi(cmd, g, f)
		}),
	}
	f.split.register(c, "training images: all are used unlabelled, a fraction with labels")
	fl := c.Flags()
	fl.StringVar(&f.checkpoint, "checkpoint", "", "pretrained model to start from (instead of --pretrain-config)")
	fl.StringVar(&f.pretrainConfig, "pretrain-config", "", "YAML settings of the pretraining stage (keys: simclr pretrain's flag names with underscores)")
	fl.StringVar(&f.fractions, "fractions", f.fractions, "label fractions, comma-separated")
	fl.StringVar(&f.selectMethod, "select", "", "label the --budget images simclr select chooses by this method ("+orList(selection.Methods)+") instead of --fractions")
	fl.IntVar(&f.budget, "budget", 0, "images --select chooses")
	fl.IntVar(&f.selector, "ft-proj-selector", 0, "fine-tune from the head's hidden layer n (0: the encoder's h; default: the recipe's, v2 uses 1)")
	fl.StringVar(&f.recipe, "recipe", recipeAuto, "fine-tuning and distillation recipe: auto (v2 for a model pretrained with --v2), v1 or v2 (see simclr finetune --help, simclr distill --help)")
	fl.StringVar(&f.evalView, "eval-view", "square", evalViewHelp)
	fl.StringVar(&f.alphaOn, "alpha-on", "", "the distillation term --alpha weighs: supervised or distillation (default: the recipe's)")
	fl.IntVar(&f.ftEpochs, "ft-epochs", f.ftEpochs, "fine-tuning (and baseline) passes over the labelled images")
	fl.IntVar(&f.ftBatch, "ft-batch", f.ftBatch, "fine-tuning batch (small label fractions need small batches to take enough steps)")
	fl.IntVar(&f.distillEpochs, "distill-epochs", f.distillEpochs, "distillation passes over all training images")
	fl.IntVar(&f.distillBatch, "distill-batch", f.distillBatch, "distillation batch")
	fl.Float64Var(&f.alpha, "alpha", f.alpha, "distillation's loss weight (see --alpha-on)")
	fl.Float64Var(&f.temperature, "temperature", 0, "distillation temperature (default: the recipe's)")
	fl.BoolVar(&f.studentScratch, "student-scratch", false, "start students from a random initialisation instead of the pretrained encoder")
	fl.BoolVar(&f.noBaseline, "no-baseline", false, "skip the supervised baselines")
	fl.StringVar(&f.out, "out", f.out, "output folder")
	fl.BoolVar(&f.asJSON, "json", false, "print the report as JSON instead of a table")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress output")
	return c
}

func runSemi(cmd *cobra.Command, g *globalFlags, f semiFlags) error {
	began := time.Now()
	out, ctx := cmd.OutOrStdout(), cmd.Context()
	if err := f.validate(); err != nil {
		return err
	}
	fractions, err := parseFractions(f.fractions)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	if f.split.data.SkipBad { // the stages only name them on stderr
		ds, err := f.split.data.open()
		if err != nil {
			return err
		}
		if err := writeSkipped(f.out, data.SkippedFiles(ds)); err != nil {
			return err
		}
	}
	if err := writeSemiRunFile(cmd, g, f); err != nil {
		return err
	}
	rep := semiReport{Checkpoint: f.checkpoint, Data: f.split.data.Data}
	logf := func(format string, a ...any) {
		if !f.quiet {
			fmt.Fprintf(os.Stderr, "semi: "+format+"\n", a...)
		}
	}
	// stage runs one simclr command in this process and decodes its JSON
	// result into v (when not nil).
	stage := func(v any, args ...string) error {
		args = append(args, "--backend", g.backend, "--threads", strconv.Itoa(g.threads))
		if f.quiet {
			args = append(args, "--quiet")
		}
		rep.Commands = append(rep.Commands, "simclr "+strings.Join(args, " "))
		res, err := runStage(ctx, args)
		var ie *train.InterruptedError
		if errors.As(err, &ie) {
			return fmt.Errorf("simclr %s: %w\nto continue (pretraining resumes, and fine-tuning and distillation where they kept their state): %s",
				args[0], ie, commandLine(cmd))
		}
		if err != nil {
			return fmt.Errorf("simclr %s: %w", args[0], err)
		}
		if v != nil {
			if err := json.Unmarshal(lastJSON(res), v); err != nil {
				return fmt.Errorf("simclr %s printed %q: %w", args[0], res, err)
			}
		}
		return nil
	}
	data := f.split.args()
	evalData := append([]string(nil), data...)
	if f.split.testData != "" {
		evalData = append(evalData, "--test-data", f.split.testData)
	}
	evalData = append(evalData, "--test-split", f.split.testSplit, "--eval-view", f.evalView)

	if f.pretrainConfig != "" {
		dir := filepath.Join(f.out, "pretrain")
		rep.Checkpoint = filepath.Join(dir, "checkpoint.safetensors")
		args := append([]string{"pretrain", "--config", f.pretrainConfig, "--out", dir}, data...)
		if _, err := os.Stat(rep.Checkpoint); err == nil {
			args = append(args, "--resume")
		}
		logf("pretraining into %s", dir)
		if err := stage(nil, args...); err != nil {
			return err
		}
		if rep.PretrainSteps, err = checkpointStep(rep.Checkpoint); err != nil {
			return err
		}
	}
	// Each label set is a class-balanced fraction, or the images select chose.
	type labelSet struct {
		name string
		frac float64
		args []string // how finetune and distill are told the labelled images
	}
	var sets []labelSet
	for _, frac := range fractions {
		name := strconv.FormatFloat(frac, 'g', -1, 64)
		sets = append(sets, labelSet{name, frac, []string{"--fraction", name}})
	}
	if f.selectMethod != "" {
		name := f.selectMethod + "-" + strconv.Itoa(f.budget)
		picks := filepath.Join(f.out, "picks-"+name+".txt")
		logf("choosing %d images to label by %s", f.budget, f.selectMethod)
		if err := stage(nil, append([]string{"select", "--checkpoint", rep.Checkpoint, "--method", f.selectMethod,
			"--budget", strconv.Itoa(f.budget), "--out", picks}, data...)...); err != nil {
			return err
		}
		sets = []labelSet{{name, 0, []string{"--labels-file", picks}}}
	}
	for _, set := range sets {
		name := set.name
		row := semiRow{Fraction: set.frac, TeacherOut: filepath.Join(f.out, "teacher-"+name+".safetensors"),
			StudentOut: filepath.Join(f.out, "student-"+name+".safetensors")}
		ft := append(append([]string(nil), set.args...), "--epochs", strconv.Itoa(f.ftEpochs), "--batch", strconv.Itoa(f.ftBatch), "--json",
			"--recipe", f.recipe)
		ft = append(ft, evalData...)
		var teacher evalResult
		logf("fine-tuning on %s of the labels", name)
		teach := []string{"finetune", "--checkpoint", rep.Checkpoint, "--out", row.TeacherOut}
		if f.given != nil && f.given("ft-proj-selector") {
			teach = append(teach, "--ft-proj-selector", strconv.Itoa(f.selector))
		}
		if err := stage(&teacher, append(teach, resumeIfKept(row.TeacherOut, ft)...)...); err != nil {
			return err
		}
		row.Teacher, row.Labelled = teacher.Metrics["top1"], teacher.Dataset.Labelled
		rep.TrainImages, rep.TestImages = teacher.Dataset.Train, teacher.Dataset.Test
		if f.selectMethod != "" && rep.TrainImages > 0 {
			row.Selected, row.Fraction = f.selectMethod, float64(row.Labelled)/float64(rep.TrainImages)
		}
		if !f.noBaseline {
			var base evalResult
			logf("supervised baseline on %s of the labels", name)
			if err := stage(&base, append([]string{"finetune", "--checkpoint", rep.Checkpoint, "--random"}, ft...)...); err != nil {
				return err
			}
			top1 := base.Metrics["top1"]
			row.Supervised = &top1
		}
		dist := append([]string{"distill", "--teacher", row.TeacherOut}, set.args...)
		dist = append(dist, "--alpha", strconv.FormatFloat(f.alpha, 'g', -1, 64), "--recipe", f.recipe, "--epochs", strconv.Itoa(f.distillEpochs),
			"--batch", strconv.Itoa(f.distillBatch), "--out", row.StudentOut, "--json")
		if f.temperature > 0 {
			dist = append(dist, "--temperature", strconv.FormatFloat(f.temperature, 'g', -1, 64))
		}
		if f.alphaOn != "" {
			dist = append(dist, "--alpha-on", f.alphaOn)
		}
		if !f.studentScratch {
			dist = append(dist, "--student-init", rep.Checkpoint)
		}
		var student evalResult
		logf("distilling the %s teacher", name)
		if err := stage(&student, append(resumeIfKept(row.StudentOut, dist), evalData...)...); err != nil {
			return err
		}
		row.Student = student.Metrics["top1"]
		rep.Rows = append(rep.Rows, row)
		if _, err := writeSemiPage(f.out, rep, true); err != nil {
			return err
		}
	}
	rep.Seconds = time.Since(began).Seconds()

	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.out, "semi.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var md bytes.Buffer
	fmt.Fprintf(&md, "# Semi-supervised results: %s\n\nPretrained model: %s", rep.Data, rep.Checkpoint)
	if rep.PretrainSteps > 0 {
		fmt.Fprintf(&md, " (%d pretraining steps)", rep.PretrainSteps)
	}
	fmt.Fprintf(&md, "\n\n%d training images (all used unlabelled for distillation), %d test images.\n\n", rep.TrainImages, rep.TestImages)
	fmt.Fprintln(&md, "| labels | labelled images | supervised only | fine-tuned (teacher) | distilled student |")
	fmt.Fprintln(&md, "|---|---|---|---|---|")
	for _, r := range rep.Rows {
		fmt.Fprintf(&md, "| %g%% | %d | %s | %.2f%% | %.2f%% |\n", 100*r.Fraction, r.Labelled, optionalPct(r.Supervised), 100*r.Teacher, 100*r.Student)
	}
	fmt.Fprintf(&md, "\nTest top-1. %.0f s in all. Commands:\n\n```sh\n%s\n```\n", rep.Seconds, strings.Join(rep.Commands, "\n"))
	if err := os.WriteFile(filepath.Join(f.out, "report.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	if _, err := writeSemiPage(f.out, rep, false); err != nil {
		return err
	}
	if f.asJSON {
		return rep.result(f).print(out, began)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "labels\tlabelled images\tsupervised only\tfine-tuned (teacher)\tdistilled student\t")
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%g%%\t%d\t%s\t%.2f%%\t%.2f%%\t\n", 100*r.Fraction, r.Labelled, optionalPct(r.Supervised), 100*r.Teacher, 100*r.Student)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "test top-1 on %d test images (%d training images); %.0f s; report in %s\n", rep.TestImages, rep.TrainImages, rep.Seconds, filepath.Join(f.out, "report.md"))
	return nil
}

// runStage runs a simclr command line in this process and returns what it
// printed.
func runStage(ctx context.Context, args []string) ([]byte, error) {
	return executeContext(ctx, args, pretrainCmd, finetuneCmd, distillCmd, selectCmd)
}

// execute runs args on a root command holding cmds, in this process, and
// returns what the command printed.
func execute(args []string, cmds ...func(*globalFlags) *cobra.Command) ([]byte, error) {
	return executeContext(context.Background(), args, cmds...)
}

// executeContext is execute under ctx (a signal cancels it).
func executeContext(ctx context.Context, args []string, cmds ...func(*globalFlags) *cobra.Command) ([]byte, error) {
	root := &cobra.Command{Use: "simclr", SilenceUsage: true, SilenceErrors: true}
	var g globalFlags
	g.register(root)
	for _, c := range cmds {
		root.AddCommand(c(&g))
	}
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.Bytes(), err
}

// lastJSON is the last top-level JSON document of a command's output.
func lastJSON(out []byte) []byte {
	return out[bytes.LastIndex(out, []byte("\n{"))+1:]
}

// args gives back the dataset flags as command-line arguments, for the
// stages semi runs.
func (s *splitFlags) args() []string {
	a := []string{"--data", s.data.Data, "--split", s.data.Split, "--seed", strconv.FormatUint(s.seed, 10)}
	if s.data.Limit > 0 {
		a = append(a, "--limit", strconv.Itoa(s.data.Limit))
	}
	if s.data.SkipBad {
		a = append(a, "--skip-bad")
	}
	if s.val > 0 {
		a = append(a, "--val", strconv.FormatFloat(s.val, 'g', -1, 64))
	}
	return a
}

func parseFractions(s string) ([]float64, error) {
	var fs []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(v > 0 && v <= 1) {
			return nil, fmt.Errorf("--fractions %q: %q is not a fraction in (0, 1]", s, p)
		}
		fs = append(fs, v)
	}
	return fs, nil
}

func optionalPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100**v)
}
