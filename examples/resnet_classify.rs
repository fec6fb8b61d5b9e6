//! # Classify an image with a torchvision ResNet
//!
//! Loads a ResNet-18, -34 or -50 from a torchvision `state_dict` saved as safetensors
//! ([`ResNet::from_safetensors`]: the depth and the number of classes are read off the file),
//! prepares the image as torchvision's ImageNet transforms do (shorter side resized to 256
//! with a triangle filter, centre crop 224×224, scaled to [0, 1], normalised with ImageNet's
//! mean and standard deviation per channel), runs the network in evaluation mode and prints the
//! `--top` most likely classes with their probabilities (and names, given `--labels`: a text
//! file with one class name per line, in class order).
//!
//! Make a weight file in Python (nothing is downloaded here):
//!
//! ```python
//! import torchvision, safetensors.torch
//! m = torchvision.models.resnet18(weights="IMAGENET1K_V1")
//! safetensors.torch.save_file(m.state_dict(), "resnet18.safetensors")
//! ```
//!
//! ```text
//! cargo run --release --example resnet_classify -- --weights resnet18.safetensors --image cat.jpg
//! # without torchvision: a randomly initialised ResNet-18 in torchvision's format, then classify
//! cargo run --release --example resnet_classify -- --save-random /tmp/r18.safetensors
//! cargo run --release --example resnet_classify -- --weights /tmp/r18.safetensors --image tests/fixtures/resnet/digit.png
//! ```
//!
//! Flags: `--weights FILE`, `--image FILE` (PNG or JPEG), `--labels FILE`, `--top K` (default 5),
//! `--save-random FILE` (write a random ResNet-18 with 1000 classes and exit), `--help`. The last
//! line it prints is `top1=<class> probability=<float>`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use image::imageops::FilterType;
use tensorgrad::models::resnet::{ResNet, ResNetDepth};
use tensorgrad::nn::Module;
use tensorgrad::{Tensor, io, no_grad};

#[path = "common/cli.rs"]
mod cli;

const USAGE: &str = "usage: resnet_classify --weights FILE --image FILE [--labels FILE] [--top K] | --save-random FILE";
/// torchvision's ImageNet normalisation.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
const RESIZE: u32 = 256;
const CROP: u32 = 224;

#[derive(Default)]
struct Args {
    weights: Option<PathBuf>,
    image: Option<PathBuf>,
    labels: Option<PathBuf>,
    top: usize,
    save_random: Option<PathBuf>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut a = Args { top: 5, ..Args::default() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--weights" => a.weights = Some(value()?.into()),
            "--image" => a.image = Some(value()?.into()),
            "--labels" => a.labels = Some(value()?.into()),
            "--save-random" => a.save_random = Some(value()?.into()),
            "--top" => a.top = value()?.parse().map_err(|_| "--top needs a count".to_string())?,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.save_random.is_none() && (a.weights.is_none() || a.image.is_none()) {
        return Err("--weights and --image are needed (or --save-random FILE)".into());
    }
    if a.top == 0 {
        return Err("--top must be at least 1".into());
    }
    Ok(Some(a))
}

/// The image as torchvision's `Resize(256) → CenterCrop(224) → ToTensor → Normalize` makes it:
/// `[1, 3, 224, 224]`.
fn preprocess(path: &PathBuf) -> Result<Tensor, Box<dyn std::error::Error>> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?.to_rgb8();
    let (w, h) = img.dimensions();
    let scale = RESIZE as f64 / w.min(h) as f64;
    let (nw, nh) = (((w as f64 * scale).round() as u32).max(CROP), ((h as f64 * scale).round() as u32).max(CROP));
    let resized = image::imageops::resize(&img, nw, nh, FilterType::Triangle);
    let (left, top) = ((nw - CROP) / 2, (nh - CROP) / 2);
    let side = CROP as usize;
    let mut data = vec![0f32; 3 * side * side];
    for y in 0..side {
        for x in 0..side {
            let p = resized.get_pixel(left + x as u32, top + y as u32);
            for c in 0..3 {
                data[c * side * side + y * side + x] = (f32::from(p[c]) / 255.0 - MEAN[c]) / STD[c];
            }
        }
    }
    Ok(Tensor::from_vec(data, &[1, 3, side, side]))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(path) = &args.save_random {
        let model: ResNet = ResNet::new(ResNetDepth::R18, 1000, 0);
        io::save_model(&model, path)?;
        println!("wrote a randomly initialised ResNet-18 (1000 classes, torchvision's names) to {}", path.display());
        return Ok(());
    }
    let (weights, image) = (args.weights.as_ref().unwrap(), args.image.as_ref().unwrap());
    let started = Instant::now();
    let mut model: ResNet = ResNet::from_safetensors(weights)?;
    model.eval();
    println!(
        "model: {} from {} ({} parameters), loaded in {:.2} s",
        model.describe(),
        weights.display(),
        model.num_parameters(),
        started.elapsed().as_secs_f64()
    );
    let labels: Option<Vec<String>> = match &args.labels {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .lines()
                .map(str::to_string)
                .collect(),
        ),
        None => None,
    };
    let x = preprocess(image)?;
    let started = Instant::now();
    let probs = no_grad(|| model.forward(&x).softmax(1)).to_vec();
    println!("image: {} → [1, 3, 224, 224]; forward pass {:.3} s", image.display(), started.elapsed().as_secs_f64());
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    for (rank, &c) in order.iter().take(args.top).enumerate() {
        let name = labels.as_ref().and_then(|l| l.get(c)).map_or(String::new(), |n| format!(" {n}"));
        println!("{:>2}. class {c:>4}{name}: {:.4}", rank + 1, probs[c]);
    }
    println!("top1={} probability={:.4}", order[0], probs[order[0]]);
    Ok(())
}

fn main() -> ExitCode {
    cli::main_with(USAGE, parse_args(), run)
}
