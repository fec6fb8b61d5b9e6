//! `Sequential`: modules applied one after another, and its Keras-style [`Summary`].

use super::StepKey;
use super::module::{Buffer, Mask, Module, Param, derive_seed, join};
use crate::{Element, Tensor};

/// Applies its modules in order, passing a padding [`Mask`] along (so an `Embedding` with
/// `mask_zero` feeds its mask to the `Lstm` after it, as in Keras).
///
/// Parameter names are `<child name>.<parameter>`; a child added with [`add`](Self::add) is named
/// by its position (`0.weight`, as in PyTorch), one added with [`add_named`](Self::add_named) by
/// the given name (`lstm.weight_ih_l0`).
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::{Tensor, nn::{Linear, Module, Relu, Sequential}};
/// let mut rng = StdRng::seed_from_u64(0);
/// let mlp: Sequential = Sequential::new()
///     .add(Linear::new(4, 8, &mut rng))
///     .add(Relu)
///     .add(Linear::new(8, 2, &mut rng));
/// assert_eq!(mlp.forward(&Tensor::zeros(&[5, 4])).shape(), &[5, 2]);
/// let names: Vec<String> = mlp.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// ```
pub struct Sequential<E: Element = f32> {
    layers: Vec<(String, Box<dyn Module<E>>)>,
}

impl<E: Element> Default for Sequential<E> {
    fn default() -> Self {
        Sequential { layers: Vec::new() }
    }
}

/// The layers with their names and settings, in PyTorch's layout (nested containers indented).
///
/// ```
/// use tensorgrad::nn::{Activation, Dense, Dropout, Linear, Relu, Sequential};
/// let model: Sequential = Sequential::new()
///     .add_named("hidden", Linear::new(4, 8, 0))
///     .add(Relu)
///     .add(Dropout::new(0.5, 0))
///     .add_named("out", Dense::new(8, 1, Some(Activation::Sigmoid), 1));
/// assert_eq!(
///     model.to_string(),
///     "Sequential(\n  (hidden): Linear(in_features=4, out_features=8, bias=true)\n  (1): ReLU\n  \
///      (2): Dropout(p=0.5)\n  (out): Dense(in_features=8, units=1, activation=Sigmoid)\n)"
/// );
/// ```
impl<E: Element> std::fmt::Display for Sequential<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&Module::describe(self))
    }
}

/// The same text as `Display`.
impl<E: Element> std::fmt::Debug for Sequential<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&Module::describe(self))
    }
}

impl<E: Element> Sequential<E> {
    /// An empty sequence (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a module named by its position (Keras's `model.add`).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, module: impl Module<E> + 'static) -> Self {
        let name = self.layers.len().to_string();
        self.layers.push((name, Box::new(module)));
        self
    }

    /// Appends a module under a name (used in parameter names).
    ///
    /// ```
    /// use tensorgrad::nn::{Linear, Module, Relu, Sequential};
    /// let model: Sequential = Sequential::new().add_named("encoder", Linear::new(4, 2, 0)).add(Relu);
    /// assert_eq!(model.names(), ["encoder", "1"]);
    /// assert_eq!(model.named_parameters()[0].0, "encoder.weight");
    /// ```
    ///
    /// # Panics
    /// If `name` is empty, contains a dot, or is already taken.
    #[track_caller]
    pub fn add_named(mut self, name: &str, module: impl Module<E> + 'static) -> Self {
        if name.is_empty() || name.contains('.') || self.layers.iter().any(|(n, _)| n == name) {
            panic!("Sequential: layer name {name:?} must be non-empty, without dots, and unique");
        }
        self.layers.push((name.to_string(), Box::new(module)));
        self
    }

    /// The module called `name` (Keras's `model.get_layer(name)`), e.g. to run part of a model.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::nn::{Embedding, Linear, Module, Sequential};
    /// let model: Sequential = Sequential::new()
    ///     .add_named("embedding", Embedding::new(10, 4, 0))
    ///     .add_named("head", Linear::new(4, 1, 1));
    /// // The embedding alone: the vectors of two ids.
    /// let vectors = model.get("embedding").unwrap().forward(&Tensor::from_slice(&[3.0, 7.0]));
    /// assert_eq!(vectors.shape(), &[2, 4]);
    /// assert!(model.get("lstm").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<&dyn Module<E>> {
        self.layers.iter().find(|(n, _)| n == name).map(|(_, m)| &**m as &dyn Module<E>)
    }

    /// The names of the modules, in order.
    pub fn names(&self) -> Vec<&str> {
        self.layers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when there are no modules.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Keras's `model.summary()`: each layer with its name, kind and output shape for an input of
    /// `input_shape`, and its parameter count, split into trainable and frozen. The output
    /// shapes come from one forward pass over an input of ones (valid ids for an `Embedding`),
    /// without recording a graph and without moving any dropout generator on, so calling it
    /// changes nothing about later training. `Display` prints the table.
    ///
    /// ```
    /// use tensorgrad::nn::{Activation, Dense, Embedding, Lstm, LstmConfig, Sequential};
    /// let model: Sequential = Sequential::new()
    ///     .add_named("embedding", Embedding::new(10_000, 16, 0).with_mask_zero(true))
    ///     .add_named("lstm", Lstm::new(LstmConfig::new(16, 128), 1))
    ///     .add_named("dense", Dense::new(128, 1, Some(Activation::Sigmoid), 2));
    /// let summary = model.summary(&[1, 100]);
    /// assert_eq!(summary.layers[1].output_shape, [1, 128]);
    /// assert_eq!(summary.total_params(), 160_000 + 74_752 + 129);
    /// println!("{summary}");
    /// ```
    ///
    /// # Panics
    /// As the model's forward pass does if it cannot take an input of that shape, at the caller's
    /// line.
    #[track_caller]
    pub fn summary(&self, input_shape: &[usize]) -> Summary {
        let scope = StepKey::new(0, 0, 0, 0);
        let mut layers = Vec::with_capacity(self.layers.len());
        crate::no_grad(|| {
            scope.scope(|| {
                let mut h = Tensor::<E>::ones(input_shape);
                let mut m = None;
                for (name, layer) in &self.layers {
                    let (y, next) = layer.forward_masked(&h, m.as_ref());
                    let (mut params, mut trainable) = (0, 0);
                    layer.visit_params("", &mut |_, p| {
                        let n = p.value().numel();
                        params += n;
                        if p.is_trainable() {
                            trainable += n;
                        }
                    });
                    let describe = layer.describe();
                    let kind = describe.split(['(', '\n']).next().unwrap_or_default().to_string();
                    layers.push(LayerSummary {
                        name: name.clone(),
                        kind,
                        output_shape: y.shape().to_vec(),
                        params,
                        trainable,
                    });
                    h = y;
                    m = next;
                }
            })
        });
        Summary { input_shape: input_shape.to_vec(), layers }
    }
}

/// One row of a [`Summary`].
///
/// ```
/// use tensorgrad::nn::{LayerSummary, Linear, Module, Relu, Sequential};
/// let model: Sequential = Sequential::new().add_named("hidden", Linear::new(4, 8, 0)).add(Relu);
/// model.set_trainable("hidden.bias", false);
/// let rows = model.summary(&[32, 4]).layers;
/// let expected = LayerSummary {
///     name: "hidden".into(),
///     kind: "Linear".into(),
///     output_shape: vec![32, 8],
///     params: 4 * 8 + 8,
///     trainable: 4 * 8,
/// };
/// assert_eq!(rows[0], expected);
/// assert_eq!((rows[1].name.as_str(), rows[1].kind.as_str(), rows[1].params), ("1", "ReLU", 0));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSummary {
    /// The layer's name in its `Sequential` (its position if added with `add`).
    pub name: String,
    /// The layer's kind (`Linear`, `LSTM`, …).
    pub kind: String,
    /// The shape the layer returned for the summary's input.
    pub output_shape: Vec<usize>,
    /// Scalar parameters, frozen ones included.
    pub params: usize,
    /// The trainable part of `params`.
    pub trainable: usize,
}

/// A model's layers, output shapes and parameter counts: what
/// [`Sequential::summary`] returns. `Display` prints it as Keras does.
///
/// ```
/// use tensorgrad::nn::{Linear, Module, Relu, Sequential};
/// let model: Sequential =
///     Sequential::new().add_named("hidden", Linear::new(4, 8, 0)).add(Relu).add_named("out", Linear::new(8, 2, 1));
/// model.set_trainable("hidden.weight", false); // freeze the first layer's weight
/// let summary = model.summary(&[32, 4]);
/// assert_eq!(summary.layers[2].output_shape, [32, 2]);
/// assert_eq!((summary.total_params(), summary.trainable_params(), summary.frozen_params()), (58, 26, 32));
///
/// let text = summary.to_string();
/// assert!(text.starts_with("Input shape: [32, 4]"));
/// assert!(text.ends_with("Total params: 58\nTrainable params: 26\nNon-trainable params: 32"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The input shape the output shapes were computed for.
    pub input_shape: Vec<usize>,
    /// One entry per layer, in order.
    pub layers: Vec<LayerSummary>,
}

impl Summary {
    /// Every scalar parameter.
    pub fn total_params(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// The parameters an optimizer would update.
    pub fn trainable_params(&self) -> usize {
        self.layers.iter().map(|l| l.trainable).sum()
    }

    /// The frozen parameters.
    pub fn frozen_params(&self) -> usize {
        self.total_params() - self.trainable_params()
    }
}

/// `1234567` → `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<[String; 3]> = self
            .layers
            .iter()
            .map(|l| [format!("{} ({})", l.name, l.kind), format!("{:?}", l.output_shape), thousands(l.params)])
            .collect();
        let head = ["Layer (type)".to_string(), "Output shape".to_string(), "Param #".to_string()];
        let w: Vec<usize> =
            (0..3).map(|c| rows.iter().chain([&head]).map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        let rule = "=".repeat(w[0] + w[1] + w[2] + 6);
        writeln!(f, "Input shape: {:?}", self.input_shape)?;
        writeln!(f, "{:<a$}   {:<b$}   {:>c$}", head[0], head[1], head[2], a = w[0], b = w[1], c = w[2])?;
        writeln!(f, "{rule}")?;
        for r in &rows {
            writeln!(f, "{:<a$}   {:<b$}   {:>c$}", r[0], r[1], r[2], a = w[0], b = w[1], c = w[2])?;
        }
        writeln!(f, "{rule}")?;
        writeln!(f, "Total params: {}", thousands(self.total_params()))?;
        writeln!(f, "Trainable params: {}", thousands(self.trainable_params()))?;
        write!(f, "Non-trainable params: {}", thousands(self.frozen_params()))
    }
}

impl<E: Element> Module<E> for Sequential<E> {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.forward_masked(x, None).0
    }

    /// Several inputs go to the first module (say an attention layer); its output goes on
    /// through the others as in [`forward`](Module::forward). One input is `forward`.
    ///
    /// # Panics
    /// If the first module does not take that many inputs, or the sequence is empty and given
    /// more than one.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        if let [x] = inputs {
            return self.forward(x);
        }
        let Some(((_, first), rest)) = self.layers.split_first() else {
            panic!("forward_many: an empty Sequential takes one input, got {}", inputs.len());
        };
        let mut h = first.forward_many(inputs);
        let mut m = None;
        for (_, layer) in rest {
            let (y, next) = layer.forward_masked(&h, m.as_ref());
            h = y;
            m = next;
        }
        h
    }

    fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
        let mut h = x.clone();
        let mut m = mask.cloned();
        for (_, layer) in &self.layers {
            let (y, next) = layer.forward_masked(&h, m.as_ref());
            h = y;
            m = next;
        }
        (h, m)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        for (name, layer) in &self.layers {
            layer.visit_params(&join(prefix, name), f);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<E>)) {
        for (name, layer) in &self.layers {
            layer.visit_buffers(&join(prefix, name), f);
        }
    }

    fn describe(&self) -> String {
        let mut s = String::from("Sequential(");
        for (name, layer) in &self.layers {
            s += &format!("\n  ({name}): {}", layer.describe().replace('\n', "\n  "));
        }
        s + if self.layers.is_empty() { ")" } else { "\n)" }
    }

    fn set_training(&mut self, training: bool) {
        for (_, layer) in &mut self.layers {
            layer.set_training(training);
        }
    }

    fn reseed(&mut self, seed: u64) {
        for (i, (_, layer)) in self.layers.iter_mut().enumerate() {
            layer.reseed(derive_seed(seed, i as u64));
        }
    }
}
