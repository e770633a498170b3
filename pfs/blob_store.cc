#include "pfs/blob_store.h"

#include <snappy.h>

#include <cstring>
#include <memory>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "pfs/keys.h"
#include "pfs/pfs_metrics.h"

namespace tusk::pfs {
namespace {

// The pack trailer: the footer, its length (u32, little-endian), then (v2)
// the first 8 bytes of the footer's SHA-256, then the magic. v1 packs (no
// checksum) are still read.
constexpr char kPackMagicV1[] = "TUSKPAK1";
constexpr char kPackMagic[] = "TUSKPAK2";
constexpr uint64_t kFooterSumSize = 8;

std::string IndexKey(const Hash& h) { return BlobIndexKey(h.Raw()); }
std::string PendingKey(const Hash& h) { return PendingBlobKey(h.Raw()); }

// 8 bytes of creation time (big-endian Unix nanoseconds: GC's grace period
// needs a pack's age without another request), 8 random bytes.
std::string NewPackId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t now = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
  std::string id(16, '\0');
  for (int i = 0; i < 8; ++i) id[i] = static_cast<char>(now >> (56 - 8 * i));
  uint64_t r = rng();
  std::memcpy(id.data() + 8, &r, 8);
  return id;
}

// The raw bytes of a stored blob (decompressed, size checked); `what`
// names it in errors.
absl::StatusOr<std::string> Unpack(uint32_t codec, uint64_t raw_size, std::string stored,
                                   absl::string_view what) {
  std::string raw;
  if (codec == 1) {
    if (!snappy::Uncompress(stored.data(), stored.size(), &raw)) {
      return absl::DataLossError(
          absl::StrCat(what, " is corrupt: snappy data does not decompress"));
    }
  } else if (codec == 0) {
    raw = std::move(stored);
  } else {
    return absl::DataLossError(absl::StrCat(what, " has unknown codec ", codec));
  }
  if (raw.size() != raw_size) {
    return absl::DataLossError(
        absl::StrCat(what, " is corrupt: ", raw.size(), " bytes, expected ", raw_size));
  }
  return raw;
}

absl::StatusOr<std::string> Decode(const storage::v1::BlobLocation& loc, std::string stored,
                                   const Hash& hash, absl::string_view where) {
  ASSIGN_OR_RETURN(std::string raw, Unpack(loc.codec(), loc.raw_size(), std::move(stored),
                                           absl::StrCat("blob ", hash.Hex(), " in ", where)));
  if (Sha256(raw) != hash) {
    return absl::DataLossError(absl::StrCat("blob ", hash.Hex(), " in ", where,
                                            " is corrupt: its content does not match its hash"));
  }
  return raw;
}

}  // namespace

PreparedBlob PrepareOwnedBlobWithHash(const Hash& hash, std::string raw) {
  PreparedBlob b;
  b.hash = hash;
  b.raw_size = static_cast<uint32_t>(raw.size());
  if (raw.size() >= 64) {
    // Compress into a per-thread scratch buffer: most large chunks do not
    // compress, and a fresh zero-filled string per attempt costs more than
    // snappy's own pass over incompressible data.
    thread_local std::unique_ptr<char[]> scratch;
    thread_local size_t scratch_size = 0;
    size_t max = snappy::MaxCompressedLength(raw.size());
    if (scratch_size < max) {
      scratch.reset(new char[max]);
      scratch_size = max;
    }
    size_t compressed_size = 0;
    snappy::RawCompress(raw.data(), raw.size(), scratch.get(), &compressed_size);
    // Keep the compressed form only when it saves at least 1/8.
    if (compressed_size <= raw.size() - raw.size() / 8) {
      b.codec = 1;
      b.stored.assign(scratch.get(), compressed_size);
      return b;
    }
  }
  b.stored = std::move(raw);
  return b;
}

PreparedBlob PrepareBlobWithHash(const Hash& hash, absl::string_view raw) {
  return PrepareOwnedBlobWithHash(hash, std::string(raw));
}

PreparedBlob PrepareBlob(absl::string_view raw) { return PrepareBlobWithHash(Sha256(raw), raw); }

PreparedBlob PrepareOwnedBlob(std::string raw) {
  Hash h = Sha256(raw);
  return PrepareOwnedBlobWithHash(h, std::move(raw));
}

std::string PackKey(absl::string_view pack_id) {
  std::string hex = ToHex(pack_id);
  return absl::StrCat(kPackPrefix, hex.substr(0, 2), "/", hex, ".pack");
}

absl::Time PackTime(absl::string_view pack_id) {
  if (pack_id.size() < 8) return absl::InfinitePast();
  uint64_t nanos = 0;
  for (int i = 0; i < 8; ++i) nanos = (nanos << 8) | static_cast<uint8_t>(pack_id[i]);
  return absl::FromUnixNanos(static_cast<int64_t>(nanos));
}

std::pair<std::string, std::string> BlobIndexRecord(absl::string_view pack_id,
                                                    const storage::v1::PackFooter::Item& item) {
  storage::v1::BlobLocation loc;
  loc.set_pack(std::string(pack_id));
  loc.set_offset(item.offset());
  loc.set_stored_size(item.stored_size());
  loc.set_raw_size(item.raw_size());
  loc.set_codec(item.codec());
  return {BlobIndexKey(item.hash()), loc.SerializeAsString()};
}

std::string PackIdFromKey(absl::string_view key) {
  // packs/xx/<32 hex>.pack
  if (key.size() != 6 + 3 + 32 + 5 || !absl::StartsWith(key, kPackPrefix) ||
      !absl::EndsWith(key, ".pack")) {
    return "";
  }
  auto raw = FromHex(key.substr(9, 32));
  if (!raw.ok()) return "";
  return *raw;
}

absl::StatusOr<storage::v1::PackFooter> ReadPackFooter(ObjectStore* store, const std::string& key,
                                                       uint64_t size, std::string* whole,
                                                       std::string* damaged) {
  constexpr uint64_t kMinTrailer = 4 + 8;
  if (size < kMinTrailer) {
    return absl::DataLossError(absl::StrCat("pack ", key, " is truncated (", size, " bytes)"));
  }
  // One read covers the footer of most packs (or the whole pack, if wanted).
  uint64_t guess = whole != nullptr ? size : std::min<uint64_t>(size, 64 << 10);
  ASSIGN_OR_RETURN(std::string tail, store->GetRange(key, size - guess, guess));
  uint64_t trailer = 0;
  if (tail.compare(tail.size() - 8, 8, kPackMagic) == 0) {
    trailer = 4 + kFooterSumSize + 8;
  } else if (tail.compare(tail.size() - 8, 8, kPackMagicV1) == 0) {
    trailer = kMinTrailer;
  } else {
    return absl::DataLossError(
        absl::StrCat("pack ", key, " has no pack trailer (truncated or not a pack)"));
  }
  if (size < trailer) {
    return absl::DataLossError(absl::StrCat("pack ", key, " is truncated (", size, " bytes)"));
  }
  uint32_t footer_len = 0;
  std::memcpy(&footer_len, tail.data() + tail.size() - trailer, 4);
  if (footer_len + trailer > size) {
    return absl::DataLossError(absl::StrCat("pack ", key, " has a footer longer than the pack"));
  }
  std::string footer_bytes;
  if (footer_len + trailer <= guess) {
    footer_bytes = tail.substr(tail.size() - trailer - footer_len, footer_len);
  } else {
    ASSIGN_OR_RETURN(footer_bytes, store->GetRange(key, size - trailer - footer_len, footer_len));
  }
  std::string problem;
  if (trailer > kMinTrailer) {
    absl::string_view sum(tail.data() + tail.size() - 8 - kFooterSumSize, kFooterSumSize);
    if (Sha256(footer_bytes).Raw().substr(0, kFooterSumSize) != sum) {
      problem = absl::StrCat("pack ", key, " has a damaged footer (its checksum does not match)");
    }
  }
  storage::v1::PackFooter footer;
  if (!footer.ParseFromString(footer_bytes)) {
    return absl::DataLossError(absl::StrCat("pack ", key, " has a corrupt footer"));
  }
  for (const auto& item : footer.items()) {
    if (item.hash().size() != Hash::kSize ||
        item.offset() + item.stored_size() + footer_len + trailer > size) {
      if (problem.empty()) problem = absl::StrCat("pack ", key, " lists a blob outside the pack");
    }
  }
  if (!problem.empty()) {
    if (damaged == nullptr) return absl::DataLossError(problem);
    *damaged = problem;
  }
  if (whole != nullptr) *whole = std::move(tail);
  return footer;
}

absl::StatusOr<storage::v1::PackFooter> RecoverPackFooter(ObjectStore* store,
                                                          const std::string& key, uint64_t size,
                                                          std::string* problem) {
  std::string whole;
  ASSIGN_OR_RETURN(storage::v1::PackFooter footer,
                   ReadPackFooter(store, key, size, &whole, problem));
  if (problem->empty()) return footer;
  // Only the blobs vouch for themselves: each item that still decodes is
  // listed under the hash of what it holds; the logs cannot be trusted.
  storage::v1::PackFooter recovered;
  for (const auto& item : footer.items()) {
    if (item.offset() + item.stored_size() > whole.size()) continue;
    auto raw =
        Unpack(item.codec(), item.raw_size(), whole.substr(item.offset(), item.stored_size()), key);
    if (!raw.ok()) continue;  // this item's entry is what was damaged
    storage::v1::PackFooter::Item* kept = recovered.add_items();
    *kept = item;
    kept->set_hash(Sha256(*raw).Raw());
  }
  return recovered;
}

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(Kv* kv, ObjectStore* store,
                                                           BlobStoreOptions options) {
  auto bs = std::unique_ptr<BlobStore>(new BlobStore(kv, store, options));
  // Count what is waiting to be packed (left by a previous run).
  uint64_t pending = 0;
  std::vector<Hash> hashes;
  RETURN_IF_ERROR(kv->ScanPrefix(kPendingBlobSpace, [&](absl::string_view key, absl::string_view) {
    auto h = Hash::FromRaw(key.substr(1));
    if (h.ok()) hashes.push_back(*h);
    return true;
  }));
  for (const Hash& h : hashes) {
    auto loc = bs->Locate(h);
    if (loc.ok()) pending += loc->inline_data().size();
  }
  bs->pending_bytes_ = pending;
  return bs;
}

absl::StatusOr<bool> BlobStore::Contains(const Hash& hash) {
  ASSIGN_OR_RETURN(auto v, kv_->Get(IndexKey(hash)));
  return v.has_value();
}

absl::StatusOr<storage::v1::BlobLocation> BlobStore::Locate(const Hash& hash) {
  ASSIGN_OR_RETURN(auto v, kv_->Get(IndexKey(hash)));
  if (!v.has_value()) {
    return absl::NotFoundError(absl::StrCat("blob ", hash.Hex(), " is not in the index"));
  }
  storage::v1::BlobLocation loc;
  if (!loc.ParseFromString(*v)) {
    return absl::DataLossError(absl::StrCat("index record of blob ", hash.Hex(), " is corrupt"));
  }
  return loc;
}

absl::StatusOr<std::string> BlobStore::Read(const Hash& hash) {
  ASSIGN_OR_RETURN(storage::v1::BlobLocation loc, Locate(hash));
  if (loc.pack().empty()) {
    std::string stored = std::move(*loc.mutable_inline_data());
    return Decode(loc, std::move(stored), hash, "the index (inline)");
  }
  std::string key = PackKey(loc.pack());
  auto stored = store_->GetRange(key, loc.offset(), loc.stored_size());
  if (!stored.ok() && absl::IsNotFound(stored.status())) {
    // GC may have copied the blob into a new pack and deleted this one
    // between the lookup and the read: look again.
    ASSIGN_OR_RETURN(storage::v1::BlobLocation again, Locate(hash));
    if (again.pack() != loc.pack()) return Read(hash);
  }
  if (!stored.ok() && (absl::IsNotFound(stored.status()) || absl::IsOutOfRange(stored.status()))) {
    // The index says the blob is there: a missing or short pack is damage,
    // not a wrong name.
    return absl::DataLossError(
        absl::StrCat("blob ", hash.Hex(), " is lost: object ", key,
                     absl::IsNotFound(stored.status()) ? " is missing" : " is truncated", " (",
                     stored.status().message(), "); run tusk fsck"));
  }
  if (!stored.ok()) {
    return Annotate(stored.status(),
                    absl::StrCat("reading blob ", hash.Hex(), " from object ", key));
  }
  return Decode(loc, std::move(*stored), hash,
                absl::StrCat("object ", key, " at offset ", loc.offset()));
}

void BlobStore::Prefetch(const Hash& hash) {
  auto loc = Locate(hash);
  if (!loc.ok() || loc->pack().empty()) return;  // inline blobs need no fetching
  store_->Prefetch(PackKey(loc->pack()), loc->offset(), loc->stored_size());
}

std::unique_ptr<BlobWriter> BlobStore::NewWriter() { return std::make_unique<BlobWriter>(this); }

absl::Status BlobStore::WritePack(const std::vector<PreparedBlob>& blobs, KvBatch* index_records,
                                  const std::vector<storage::v1::MetaLog>* logs,
                                  std::string* written_id) {
  std::string pack_id = NewPackId();
  if (written_id != nullptr) *written_id = pack_id;
  std::vector<absl::string_view> parts;
  parts.reserve(blobs.size() + 1);
  uint64_t offset = 0;
  storage::v1::PackFooter footer;
  for (const auto& b : blobs) {
    auto* item = footer.add_items();
    item->set_hash(b.hash.Raw());
    item->set_offset(offset);
    item->set_stored_size(static_cast<uint32_t>(b.stored.size()));
    item->set_raw_size(b.raw_size);
    item->set_codec(b.codec);
    parts.push_back(b.stored);
    offset += b.stored.size();
  }
  if (logs != nullptr) {
    for (const auto& l : *logs) *footer.add_logs() = l;
  }
  // Tail: footer, its length (u32, little-endian), its checksum, magic.
  std::string tail = footer.SerializeAsString();
  uint32_t footer_len = static_cast<uint32_t>(tail.size());
  const std::string sum = Sha256(tail).Raw().substr(0, kFooterSumSize);
  tail.append(reinterpret_cast<const char*>(&footer_len), sizeof(footer_len));
  tail.append(sum);
  tail.append(kPackMagic, 8);
  parts.push_back(tail);
  std::string key = PackKey(pack_id);
  RETURN_IF_ERROR(Annotate(store_->PutParts(key, parts), "writing pack"));
  for (const auto& item : footer.items()) {
    auto [k, v] = BlobIndexRecord(pack_id, item);
    index_records->Put(k, v);
  }
  return absl::OkStatus();
}

absl::Status BlobStore::CollectInline(const std::vector<Hash>& hashes,
                                      std::vector<PreparedBlob>* out, bool skip_missing) {
  absl::flat_hash_set<Hash> have;
  for (const auto& b : *out) have.insert(b.hash);
  for (const Hash& h : hashes) {
    if (!have.insert(h).second) continue;
    auto loc = Locate(h);
    if (!loc.ok() && skip_missing && absl::IsNotFound(loc.status())) {
      // The change is made already; holding back its log (and every later
      // one) would not bring the blob back. fsck reports the commit.
      LOG(WARNING) << "a logged change references blob " << h.Hex()
                   << ", which the index does not know";
      continue;
    }
    if (!loc.ok()) {
      // A commit that references a blob the index does not know is a bug
      // upstream; fsck would report it. Do not write a log that hides it.
      return Annotate(loc.status(), "collecting the blobs of a commit");
    }
    if (!loc->pack().empty()) continue;
    PreparedBlob b;
    b.hash = h;
    b.raw_size = loc->raw_size();
    b.codec = loc->codec();
    b.stored = std::move(*loc->mutable_inline_data());
    b.was_inline = true;
    out->push_back(std::move(b));
  }
  return absl::OkStatus();
}

absl::Status BlobStore::DropPackIfUnindexed(absl::Status index_write, const std::string& pack_id) {
  if (index_write.ok() || pack_id.empty()) return index_write;
  // Nothing points at the pack (the index write failed whole): a retry
  // (the packer's, every tick) would otherwise leave one such pack per
  // attempt, filling a full disk again as soon as space comes back.
  absl::Status s = store_->Delete(PackKey(pack_id));
  if (!s.ok())
    LOG(WARNING) << "removing pack " << PackKey(pack_id) << " after a failed index write: " << s;
  return index_write;
}

absl::Status BlobStore::WriteLogPack(const std::vector<storage::v1::MetaLog>& logs,
                                     const std::vector<PreparedBlob>& blobs, KvBatch* batch,
                                     std::string* pack_id) {
  RETURN_IF_ERROR(WritePack(blobs, batch, &logs, pack_id));
  uint64_t bytes = 0;
  for (const auto& b : blobs) {
    if (!b.was_inline) continue;
    batch->Delete(PendingKey(b.hash));
    bytes += b.stored.size();
  }
  uint64_t cur = pending_bytes_.load();
  pending_bytes_ = cur > bytes ? cur - bytes : 0;
  return absl::OkStatus();
}

void BlobStore::AddInline(const PreparedBlob& blob, KvBatch* batch) {
  storage::v1::BlobLocation loc;
  loc.set_stored_size(static_cast<uint32_t>(blob.stored.size()));
  loc.set_raw_size(blob.raw_size);
  loc.set_codec(blob.codec);
  loc.set_inline_data(blob.stored);
  batch->Put(IndexKey(blob.hash), loc.SerializeAsString());
  batch->Put(PendingKey(blob.hash), "");
  pending_bytes_ += blob.stored.size();
}

absl::StatusOr<size_t> BlobStore::PackPending() {
  absl::MutexLock lock(&pack_mu_);
  size_t moved = 0;
  while (true) {
    std::vector<PreparedBlob> blobs;
    size_t bytes = 0;
    std::vector<std::string> done_keys;
    RETURN_IF_ERROR(
        kv_->ScanPrefix(kPendingBlobSpace, [&](absl::string_view key, absl::string_view) {
          done_keys.emplace_back(key);
          return done_keys.size() < 100000 && bytes < options_.pack_size;
        }));
    if (done_keys.empty()) break;
    for (const auto& k : done_keys) {
      auto h = Hash::FromRaw(absl::string_view(k).substr(1));
      if (!h.ok()) continue;
      auto loc = Locate(*h);
      if (!loc.ok()) {
        if (absl::IsNotFound(loc.status())) continue;
        return loc.status();
      }
      if (!loc->pack().empty()) continue;  // already packed
      PreparedBlob b;
      b.hash = *h;
      b.raw_size = loc->raw_size();
      b.codec = loc->codec();
      b.stored = std::move(*loc->mutable_inline_data());
      bytes += b.stored.size();
      blobs.push_back(std::move(b));
    }
    KvBatch batch;
    std::string pack_id;
    if (!blobs.empty()) RETURN_IF_ERROR(WritePack(blobs, &batch, nullptr, &pack_id));
    for (const auto& k : done_keys) batch.Delete(k);
    RETURN_IF_ERROR(DropPackIfUnindexed(kv_->Write(&batch, /*sync=*/true), pack_id));
    moved += blobs.size();
    uint64_t cur = pending_bytes_.load();
    pending_bytes_ = cur > bytes ? cur - bytes : 0;
    if (done_keys.size() < 100000 && bytes < options_.pack_size) break;
  }
  if (moved > 0) VLOG(1) << "packed " << moved << " inline blobs";
  return moved;
}

BlobWriter::BlobWriter(BlobStore* store) : store_(store) {
  absl::MutexLock lock(&store_->writers_mu_);
  store_->writers_.insert(this);
}

absl::StatusOr<bool> BlobWriter::Add(PreparedBlob blob) {
  {
    absl::MutexLock lock(&mu_);
    if (added_.contains(blob.hash)) return false;
  }
  bool exists;
  {
    // Atomic with GC's sweep: a blob found here is either still indexed when
    // the sweep decides, and then seen as reused, or already gone.
    absl::ReaderMutexLock gc(&store_->gc_mu_);
    ASSIGN_OR_RETURN(exists, store_->Contains(blob.hash));
    if (exists) store_->NoteReuse(blob.hash);
  }
  {
    absl::MutexLock lock(&mu_);
    added_.insert(blob.hash);
  }
  const PfsMetrics& m = Metrics();
  if (exists) {
    m.blobs_deduplicated->Inc();
    return false;
  }
  m.blobs_new->Inc();
  m.stored_bytes->Inc(blob.raw_size);
  new_bytes_ += blob.raw_size;
  new_blobs_++;
  buffer_bytes_ += blob.stored.size();
  buffer_.push_back(std::move(blob));
  if (buffer_bytes_ >= store_->options().pack_size) RETURN_IF_ERROR(FlushPack());
  return true;
}

std::vector<Hash> BlobWriter::Touched() const {
  absl::MutexLock lock(&mu_);
  return std::vector<Hash>(added_.begin(), added_.end());
}

BlobWriter::~BlobWriter() {
  WaitPacks(0).IgnoreError();  // Errors were the caller's to see.
  absl::MutexLock lock(&store_->writers_mu_);
  store_->writers_.erase(this);
}

void BlobWriter::Abandon() {
  WaitPacks(0).IgnoreError();  // the upload failed already; its cause was reported
  absl::MutexLock lock(&mu_);
  if (packs_.empty()) return;
  LOG(INFO) << "a failed upload leaves " << packs_.size()
            << " packs for the next gc to delete without waiting out the grace period";
  store_->AbandonPacks(packs_);
}

void BlobStore::AbandonPacks(const std::vector<std::string>& pack_ids) {
  absl::MutexLock lock(&abandoned_mu_);
  abandoned_.insert(pack_ids.begin(), pack_ids.end());
}

bool BlobStore::IsAbandoned(const std::string& pack_id) {
  absl::MutexLock lock(&abandoned_mu_);
  return abandoned_.contains(pack_id);
}

void BlobStore::ForgetAbandoned(const std::string& pack_id) {
  absl::MutexLock lock(&abandoned_mu_);
  abandoned_.erase(pack_id);
}

void BlobStore::NoteReuse(const Hash& hash) {
  absl::MutexLock lock(&reuse_mu_);
  if (tracking_reuse_) reused_.insert(hash);
}

void BlobStore::BeginGcMark() {
  absl::MutexLock lock(&reuse_mu_);
  tracking_reuse_ = true;
  reused_.clear();
}

void BlobStore::AddInFlight(absl::flat_hash_set<Hash>* live) {
  absl::MutexLock lock(&writers_mu_);
  for (BlobWriter* w : writers_) {
    absl::MutexLock wl(&w->mu_);
    live->insert(w->added_.begin(), w->added_.end());
  }
}

absl::Status BlobStore::SweepIndex(
    absl::flat_hash_set<Hash>* live,
    const std::function<bool(const Hash&, const storage::v1::BlobLocation&, bool live)>& dead) {
  absl::WriterMutexLock gc(&gc_mu_);
  {
    // A blob reused since the mark began is as live as a marked one: its
    // pack must stay (or be copied), not only its index record.
    absl::MutexLock lock(&reuse_mu_);
    live->insert(reused_.begin(), reused_.end());
    reused_.clear();
    tracking_reuse_ = false;
  }
  KvBatch batch;
  absl::Status parse;
  RETURN_IF_ERROR(kv_->ScanPrefix(kBlobIndexSpace, [&](absl::string_view k, absl::string_view v) {
    auto h = Hash::FromRaw(k.substr(1));
    storage::v1::BlobLocation loc;
    if (!h.ok() || !loc.ParseFromString(std::string(v))) {
      parse = absl::DataLossError("a blob index record is corrupt");
      return false;
    }
    if (dead(*h, loc, live->contains(*h))) batch.Delete(k);
    return true;
  }));
  RETURN_IF_ERROR(parse);
  return kv_->Write(&batch, /*sync=*/true);
}

absl::Status BlobWriter::FlushPack() {
  if (buffer_.empty()) return absl::OkStatus();
  auto blobs = std::make_shared<std::vector<PreparedBlob>>(std::move(buffer_));
  buffer_.clear();
  buffer_bytes_ = 0;
  BlobStore* store = store_;
  packs_in_flight_.push_back(store_->io()->Submit([this, store, blobs]() -> absl::Status {
    KvBatch batch;
    std::string id;
    RETURN_IF_ERROR(store->WritePack(*blobs, &batch, nullptr, &id));
    // The pack is durable; its index records need not be synced now: they can
    // only be lost together with everything written after them.
    RETURN_IF_ERROR(store->DropPackIfUnindexed(store->kv()->Write(&batch, /*sync=*/false), id));
    absl::MutexLock lock(&mu_);
    packs_.push_back(id);
    return absl::OkStatus();
  }));
  return WaitPacks(static_cast<size_t>(std::max(1, store_->options().packs_in_flight)));
}

absl::Status BlobWriter::WaitPacks(size_t keep) {
  absl::Status status;
  while (packs_in_flight_.size() > keep) {
    absl::Status s = packs_in_flight_.front().get();
    packs_in_flight_.pop_front();
    if (status.ok()) status = s;
  }
  return status;
}

absl::Status BlobWriter::Finish(KvBatch* batch, std::vector<PreparedBlob>* tail) {
  if (buffer_bytes_ > store_->options().inline_tail_max) {
    RETURN_IF_ERROR(FlushPack());
    return WaitPacks(0);
  }
  RETURN_IF_ERROR(WaitPacks(0));
  if (tail != nullptr) {
    for (auto& b : buffer_) tail->push_back(std::move(b));
    buffer_.clear();
    buffer_bytes_ = 0;
    return absl::OkStatus();
  }
  for (const auto& b : buffer_) store_->AddInline(b, batch);
  buffer_.clear();
  buffer_bytes_ = 0;
  return absl::OkStatus();
}

}  // namespace tusk::pfs
