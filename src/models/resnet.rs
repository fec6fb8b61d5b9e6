//! ResNet-18, -34 and -50 exactly as torchvision defines them (`torchvision.models.resnet`):
//! the same modules under the same names (`conv1`, `bn1`, `layer1.0.conv1`,
//! `layer2.0.downsample.0`, `fc`, …), the stride of a downsampling block on its 3×3 convolution
//! (torchvision's "ResNet v1.5"), batch norm's running statistics as buffers. A torchvision
//! `state_dict` saved as safetensors loads 1:1:
//!
//! ```python
//! import torchvision, safetensors.torch
//! model = torchvision.models.resnet18(weights="IMAGENET1K_V1")
//! safetensors.torch.save_file(model.state_dict(), "resnet18.safetensors")
//! ```
//!
//! ```
//! use tensorgrad::{Tensor, io};
//! use tensorgrad::models::resnet::{ResNet, ResNetDepth};
//! use tensorgrad::nn::Module;
//!
//! // A file as torchvision's would be (here written from a random model).
//! let path = std::env::temp_dir().join(format!("resnet-doc-{}.safetensors", std::process::id()));
//! io::save_model(&ResNet::<f32>::new(ResNetDepth::R18, 10, 0), &path)?;
//!
//! let mut model: ResNet = ResNet::from_safetensors(&path)?; // depth and classes read off the file
//! model.eval();
//! let images = Tensor::zeros(&[1, 3, 32, 32]);
//! assert_eq!(model.forward(&images).shape(), &[1, 10]);
//! std::fs::remove_file(&path).ok();
//! # Ok::<(), tensorgrad::Error>(())
//! ```

use std::path::Path;

use crate::nn::init::Init;
use crate::nn::{
    AdaptiveAvgPool2d, BatchNorm2d, Buffer, Conv2d, ConvConfig, Linear, MaxPool2d, Module, Param, param_name,
};
use crate::tensor::rng::RngSource;
use crate::{ConvPadding, MaxPool2dConfig};
use crate::{Element, Error, Result, Tensor};

/// Which ResNet: the block and how many of them each of the four stages has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResNetDepth {
    /// ResNet-18: basic blocks, `[2, 2, 2, 2]`.
    R18,
    /// ResNet-34: basic blocks, `[3, 4, 6, 3]`.
    R34,
    /// ResNet-50: bottleneck blocks, `[3, 4, 6, 3]`.
    R50,
}

impl ResNetDepth {
    fn blocks(self) -> [usize; 4] {
        match self {
            ResNetDepth::R18 => [2, 2, 2, 2],
            ResNetDepth::R34 | ResNetDepth::R50 => [3, 4, 6, 3],
        }
    }

    fn bottleneck(self) -> bool {
        self == ResNetDepth::R50
    }

    fn expansion(self) -> usize {
        if self.bottleneck() { 4 } else { 1 }
    }

    /// The depth whose stage sizes and block kind these are.
    fn from_layout(blocks: [usize; 4], bottleneck: bool) -> Option<Self> {
        match (blocks, bottleneck) {
            ([2, 2, 2, 2], false) => Some(ResNetDepth::R18),
            ([3, 4, 6, 3], false) => Some(ResNetDepth::R34),
            ([3, 4, 6, 3], true) => Some(ResNetDepth::R50),
            _ => None,
        }
    }
}

/// A convolution without bias, initialised as torchvision does (Kaiming normal, fan-out, ReLU).
fn conv<E: Element>(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    padding: usize,
    rng: &mut impl rand::Rng,
) -> Conv2d<E> {
    let config = ConvConfig { stride: [stride; 2], padding: ConvPadding::Explicit([padding; 2]), ..Default::default() };
    let std = (2.0 / (cout * k * k) as f64).sqrt();
    Conv2d::from_tensors(Init::Normal(0.0, std).tensor(&[cout, cin, k, k], &mut *rng), None, config)
}

/// A residual block: torchvision's `BasicBlock` (two 3×3 convolutions) or `Bottleneck`
/// (1×1, 3×3, 1×1), with the optional `downsample` projection of the identity.
#[derive(Clone, Debug)]
struct Block<E: Element> {
    convs: Vec<Conv2d<E>>,
    bns: Vec<BatchNorm2d<E>>,
    downsample: Option<(Conv2d<E>, BatchNorm2d<E>)>,
}

impl<E: Element> Block<E> {
    fn new(depth: ResNetDepth, inplanes: usize, planes: usize, stride: usize, rng: &mut impl rand::Rng) -> Self {
        let out = planes * depth.expansion();
        let convs = if depth.bottleneck() {
            vec![
                conv(inplanes, planes, 1, 1, 0, rng),
                conv(planes, planes, 3, stride, 1, rng),
                conv(planes, out, 1, 1, 0, rng),
            ]
        } else {
            vec![conv(inplanes, planes, 3, stride, 1, rng), conv(planes, planes, 3, 1, 1, rng)]
        };
        let bns = convs.iter().map(|c| BatchNorm2d::new(c.weight().value().shape()[0])).collect();
        let downsample =
            (stride != 1 || inplanes != out).then(|| (conv(inplanes, out, 1, stride, 0, rng), BatchNorm2d::new(out)));
        Block { convs, bns, downsample }
    }

    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let mut h = x.clone();
        let last = self.convs.len() - 1;
        for (i, (c, bn)) in self.convs.iter().zip(&self.bns).enumerate() {
            h = bn.forward(&c.forward(&h));
            if i < last {
                h = h.relu();
            }
        }
        let identity = match &self.downsample {
            Some((c, bn)) => bn.forward(&c.forward(x)),
            None => x.clone(),
        };
        (&h + &identity).relu()
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        for (i, (c, bn)) in self.convs.iter().zip(&self.bns).enumerate() {
            c.visit_params(&param_name(prefix, &format!("conv{}", i + 1)), f);
            bn.visit_params(&param_name(prefix, &format!("bn{}", i + 1)), f);
        }
        if let Some((c, bn)) = &self.downsample {
            c.visit_params(&param_name(prefix, "downsample.0"), f);
            bn.visit_params(&param_name(prefix, "downsample.1"), f);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<E>)) {
        for (i, bn) in self.bns.iter().enumerate() {
            bn.visit_buffers(&param_name(prefix, &format!("bn{}", i + 1)), f);
        }
        if let Some((_, bn)) = &self.downsample {
            bn.visit_buffers(&param_name(prefix, "downsample.1"), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        self.bns.iter_mut().for_each(|bn| bn.set_training(training));
        if let Some((_, bn)) = &mut self.downsample {
            bn.set_training(training);
        }
    }
}

/// A ResNet image classifier (torchvision's `ResNet`) over `[N, 3, H, W]` images, giving
/// `[N, num_classes]` logits: a 7×7 stride-2 convolution, batch norm, ReLU and 3×3 max pooling;
/// four stages of residual blocks (64, 128, 256, 512 channels, each stage after the first
/// halving the resolution); global average pooling and a linear layer.
///
/// Built with torchvision's initialisation (Kaiming normal convolutions, batch norm weight 1 and
/// bias 0, PyTorch's default for the linear layer), in training mode. Train it like any module;
/// call [`Module::eval`] for inference with the running statistics.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::models::resnet::{ResNet, ResNetDepth};
/// use tensorgrad::nn::Module;
///
/// let model: ResNet = ResNet::new(ResNetDepth::R18, 10, 0);
/// assert_eq!(model.num_parameters(), 11_181_642); // torchvision's resnet18(num_classes=10)
/// assert!(model.state_dict().iter().any(|(n, _)| n == "layer2.0.downsample.1.running_var"));
/// ```
#[derive(Clone, Debug)]
pub struct ResNet<E: Element = f32> {
    depth: ResNetDepth,
    conv1: Conv2d<E>,
    bn1: BatchNorm2d<E>,
    maxpool: MaxPool2d,
    layers: [Vec<Block<E>>; 4],
    avgpool: AdaptiveAvgPool2d,
    fc: Linear<E>,
}

impl<E: Element> ResNet<E> {
    /// A randomly initialised ResNet of the given depth with `num_classes` outputs; `rng` is
    /// `&mut` a generator or a `u64` seed.
    pub fn new(depth: ResNetDepth, num_classes: usize, rng: impl RngSource) -> Self {
        let mut rng = rng.into_rng();
        let rng = &mut rng;
        let conv1 = conv(3, 64, 7, 2, 3, rng);
        let mut inplanes = 64;
        let layers = std::array::from_fn(|stage| {
            let planes = 64 << stage;
            let stride = if stage == 0 { 1 } else { 2 };
            (0..depth.blocks()[stage])
                .map(|i| {
                    let b = Block::new(depth, inplanes, planes, if i == 0 { stride } else { 1 }, rng);
                    inplanes = planes * depth.expansion();
                    b
                })
                .collect()
        });
        ResNet {
            depth,
            conv1,
            bn1: BatchNorm2d::new(64),
            maxpool: MaxPool2d::with_config(MaxPool2dConfig {
                kernel_size: [3, 3],
                stride: Some([2, 2]),
                padding: [1, 1],
                ..Default::default()
            }),
            layers,
            avgpool: AdaptiveAvgPool2d::new([1, 1]),
            fc: Linear::new(512 * depth.expansion(), num_classes, rng),
        }
    }

    /// A ResNet with the weights and running statistics of a torchvision `state_dict` saved as
    /// safetensors (`F32`, `F64`, `F16` or `BF16`; `num_batches_tracked` as `I64`). The depth and
    /// the number of classes are read off the file: the blocks in each `layerN`, whether they
    /// have a `conv3` (bottleneck), and the shape of `fc.weight`. The model is in training mode,
    /// as torchvision's after loading; call [`Module::eval`] for inference.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Format`] for an unreadable file; [`Error::Config`] if the file is
    /// not a ResNet-18/34/50; [`Error::StateMismatch`] naming every missing, unexpected or
    /// mis-shaped tensor.
    pub fn from_safetensors(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let names = crate::io::load_tensors_converted::<E>(path)?;
        let bad = |reason: String| Error::Config { path: Some(path.to_path_buf()), reason };
        let mut blocks = [0usize; 4];
        let mut bottleneck = false;
        let mut classes = None;
        for (name, t) in &names {
            let parts: Vec<&str> = name.split('.').collect();
            if let [layer, idx, module, ..] = parts[..]
                && let Some(stage) = layer.strip_prefix("layer").and_then(|s| s.parse::<usize>().ok())
                && (1..=4).contains(&stage)
                && let Ok(i) = idx.parse::<usize>()
            {
                blocks[stage - 1] = blocks[stage - 1].max(i + 1);
                bottleneck |= module == "conv3";
            }
            if name == "fc.weight" && t.ndim() == 2 {
                classes = Some(t.shape()[0]);
            }
        }
        let depth = ResNetDepth::from_layout(blocks, bottleneck).ok_or_else(|| {
            bad(format!(
                "the file's stages have {blocks:?} {} blocks, which is not ResNet-18, -34 or -50",
                if bottleneck { "bottleneck" } else { "basic" }
            ))
        })?;
        let classes = classes.ok_or_else(|| bad("the file has no 2-D `fc.weight`".to_string()))?;
        let model = ResNet::new(depth, classes, 0);
        super::load_tensors_into(path, names, &model, |n| Some(n.to_string()))?;
        Ok(model)
    }

    /// Which ResNet this is.
    pub fn depth(&self) -> ResNetDepth {
        self.depth
    }

    /// The pooled features before the classifier, `[N, 512·expansion]`.
    pub fn features(&self, x: &Tensor<E>) -> Tensor<E> {
        if x.ndim() != 4 || x.shape()[1] != 3 {
            panic!("ResNet: expected images [N, 3, H, W], got shape {:?}", x.shape());
        }
        let mut h = self.maxpool.forward(&self.bn1.forward(&self.conv1.forward(x)).relu());
        for stage in &self.layers {
            for block in stage {
                h = block.forward(&h);
            }
        }
        Module::<E>::forward(&self.avgpool, &h).flatten(1, 3)
    }
}

impl<E: Element> Module<E> for ResNet<E> {
    /// `[N, 3, H, W]` images → `[N, num_classes]` logits.
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.fc.forward(&self.features(x))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        self.conv1.visit_params(&param_name(prefix, "conv1"), f);
        self.bn1.visit_params(&param_name(prefix, "bn1"), f);
        for (s, stage) in self.layers.iter().enumerate() {
            for (i, block) in stage.iter().enumerate() {
                block.visit_params(&param_name(prefix, &format!("layer{}.{i}", s + 1)), f);
            }
        }
        self.fc.visit_params(&param_name(prefix, "fc"), f);
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<E>)) {
        self.bn1.visit_buffers(&param_name(prefix, "bn1"), f);
        for (s, stage) in self.layers.iter().enumerate() {
            for (i, block) in stage.iter().enumerate() {
                block.visit_buffers(&param_name(prefix, &format!("layer{}.{i}", s + 1)), f);
            }
        }
    }

    fn set_training(&mut self, training: bool) {
        self.bn1.set_training(training);
        self.layers.iter_mut().flatten().for_each(|b| b.set_training(training));
    }

    fn describe(&self) -> String {
        let name = match self.depth {
            ResNetDepth::R18 => "resnet18",
            ResNetDepth::R34 => "resnet34",
            ResNetDepth::R50 => "resnet50",
        };
        format!("ResNet({name}, num_classes={})", self.fc.weight().value().shape()[0])
    }
}
