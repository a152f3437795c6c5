//! Ensembles on disk: one safetensors file per ensemble. Tensors are named `member{i}.{variable}`
//! (float32, little endian); the model card is JSON under the header's `__metadata__` key
//! `geode_model_card`, so the file alone says what it is, how it was trained and how well it does.
//! Loading is bit-exact: every variable is copied from the stored bytes.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use super::ModelError;
use super::ensemble::{Ensemble, Member, ModelCard};

/// Metadata key of the model card.
pub const CARD_KEY: &str = "geode_model_card";

/// A stored tensor: name, shape, little-endian f32 bytes.
pub(crate) type StoredTensor = (String, Vec<usize>, Vec<u8>);

/// Every member variable, sorted by stored name.
fn tensors_of(members: &[Member]) -> Result<Vec<StoredTensor>, ModelError> {
    let mut out = Vec::new();
    for (i, m) in members.iter().enumerate() {
        out.extend(vars_of(&m.vs, &format!("member{i}."))?);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The variables of one VarStore as stored tensors named `{prefix}{variable}`, sorted by name.
pub(crate) fn vars_of(vs: &tch::nn::VarStore, prefix: &str) -> Result<Vec<StoredTensor>, ModelError> {
    let mut out = Vec::new();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in vars {
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let flat = Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1))
            .map_err(|e| ModelError::Failed(e.to_string()))?;
        let bytes: Vec<u8> = flat.iter().flat_map(|x| x.to_le_bytes()).collect();
        out.push((format!("{prefix}{name}"), shape, bytes));
    }
    Ok(out)
}

/// Serialise stored tensors with one JSON metadata entry.
pub(crate) fn serialise(tensors: &[StoredTensor], key: &str, json: String) -> Result<Vec<u8>, ModelError> {
    let views = tensors
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ModelError::Failed(format!("{e:?}")))?;
    let meta = Some(HashMap::from([(key.to_string(), json)]));
    safetensors::serialize(views, &meta).map_err(|e| ModelError::Failed(format!("cannot serialise: {e:?}")))
}

/// Copy every variable of `vs` from `st` (names `{prefix}{variable}`, F32, shapes checked).
pub(crate) fn load_vars(vs: &tch::nn::VarStore, st: &SafeTensors, prefix: &str, what: &str) -> Result<(), ModelError> {
    for (name, var) in vs.variables() {
        let key = format!("{prefix}{name}");
        let view = st.tensor(&key).map_err(|_| ModelError::Setup(format!("{what}: tensor {key} missing")))?;
        let want: Vec<usize> = var.size().iter().map(|&d| d as usize).collect();
        if view.shape() != want.as_slice() || view.dtype() != Dtype::F32 {
            return Err(ModelError::Setup(format!(
                "{what}: tensor {key} is {:?} {:?}, expected F32 {want:?}",
                view.dtype(),
                view.shape()
            )));
        }
        let vals: Vec<f32> =
            view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let src = Tensor::from_slice(&vals).reshape(var.size());
        tch::no_grad(|| var.shallow_clone().copy_(&src));
    }
    Ok(())
}

/// The JSON metadata entry `key` of a safetensors header.
pub(crate) fn metadata_entry(bytes: &[u8], key: &str, what: &str) -> Result<String, ModelError> {
    let not_st = |why: &str| ModelError::Setup(format!("{what} is not a safetensors file: {why}"));
    let len: [u8; 8] = bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| not_st("shorter than 8 bytes"))?;
    let n = u64::from_le_bytes(len) as usize;
    let header = bytes.get(8..8usize.saturating_add(n)).ok_or_else(|| not_st("truncated header"))?;
    let header: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| not_st(&format!("header is not JSON: {e}")))?;
    header["__metadata__"][key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ModelError::Setup(format!("{what} has no Geode metadata {key}")))
}

/// SHA-256 over names, shapes and bytes of the tensors, in name order.
pub(crate) fn weights_hash(tensors: &[StoredTensor]) -> String {
    let mut h = Sha256::new();
    for (name, shape, bytes) in tensors {
        h.update(name.as_bytes());
        for d in shape {
            h.update((*d as u64).to_le_bytes());
        }
        h.update(bytes);
    }
    format!("{:x}", h.finalize())
}

/// Serialise an ensemble; the card's `weights_sha256` is filled in (and returned with the bytes).
pub fn to_bytes(ens: &mut Ensemble) -> Result<Vec<u8>, ModelError> {
    let tensors = tensors_of(&ens.members)?;
    ens.card.weights_sha256 = weights_hash(&tensors);
    ens.card.n_members = ens.members.len();
    let card = serde_json::to_string(&ens.card).map_err(|e| ModelError::Failed(e.to_string()))?;
    serialise(&tensors, CARD_KEY, card)
}

/// Write an ensemble to `path` (atomically: a temporary file renamed into place).
pub fn save(ens: &mut Ensemble, path: &Path) -> Result<(), ModelError> {
    let bytes = to_bytes(ens)?;
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| ModelError::Failed(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::Failed(format!("cannot write {}: {e}", path.display())))
}

/// Read only the model card from the start of a safetensors file (8-byte header length, then the
/// JSON header); the tensor data after it need not be present.
pub fn card_from_bytes(bytes: &[u8], what: &str) -> Result<ModelCard, ModelError> {
    let text = metadata_entry(bytes, CARD_KEY, what)?;
    serde_json::from_str(&text).map_err(|e| ModelError::Setup(format!("{what}: malformed model card: {e}")))
}

/// Read only the model card of a safetensors file (its header), not the weights.
pub fn card_from_file(path: &Path) -> Result<ModelCard, ModelError> {
    use std::io::Read;
    let what = path.display().to_string();
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::Setup(format!("cannot read {what}: {e}")))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| ModelError::Setup(format!("{what} is not a safetensors file: {e}")))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(ModelError::Setup(format!("{what}: header of {n} bytes is implausible")));
    }
    let mut bytes = len.to_vec();
    bytes.resize(8 + n as usize, 0);
    // Only the header is read; the weights stay on disk.
    f.read_exact(&mut bytes[8..]).map_err(|e| ModelError::Setup(format!("{what}: truncated header: {e}")))?;
    card_from_bytes(&bytes, &what)
}

/// Load an ensemble from safetensors bytes; `what` names the source in errors.
pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Ensemble, ModelError> {
    let card = card_from_bytes(bytes, what)?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Setup(format!("{what}: {e:?}")))?;
    let mut members = Vec::with_capacity(card.n_members);
    for i in 0..card.n_members {
        let m = Member::new(&card.architecture, card.targets.len(), Device::Cpu);
        load_vars(&m.vs, &st, &format!("member{i}."), what)?;
        members.push(m);
    }
    let n_expected: usize = members.iter().map(|m| m.vs.variables().len()).sum();
    if st.names().len() != n_expected {
        return Err(ModelError::Setup(format!(
            "{what}: {} tensors stored, the architecture has {n_expected}",
            st.names().len()
        )));
    }
    let ens = Ensemble { card, members };
    let check = weights_hash(&tensors_of(&ens.members)?);
    if check != ens.card.weights_sha256 {
        return Err(ModelError::Setup(format!(
            "{what}: weights hash {check} differs from the card's {}",
            ens.card.weights_sha256
        )));
    }
    Ok(ens)
}

/// Load an ensemble from a file.
pub fn load(path: &Path) -> Result<Ensemble, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::Setup(format!("cannot read {}: {e}", path.display())))?;
    from_bytes(&bytes, &path.display().to_string())
}
