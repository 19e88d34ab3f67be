// Where an S3 store finds its keys, in the order the AWS tools look: the mount's options
// (access_key, secret_key, session_token), the environment (AWS_ACCESS_KEY_ID...), the shared
// files (profile AWS_PROFILE, else "default", in AWS_SHARED_CREDENTIALS_FILE or
// ~/.aws/credentials, and AWS_CONFIG_FILE or ~/.aws/config), a web identity
// (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: STS AssumeRoleWithWebIdentity, what EKS pods
// get; endpoint AWS_ENDPOINT_URL_STS), then the instance's role through IMDSv2 (endpoint
// AWS_EC2_METADATA_SERVICE_ENDPOINT; off with AWS_EC2_METADATA_DISABLED=true). Temporary
// credentials are fetched again five minutes before they expire. None found: anonymous
// requests, and the store's errors list what was tried. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "ufs/sigv4.h"
#include "ufs/under_store.h"

namespace sluice::ufs {

// What the shared config file says for a profile (region, endpoint_url).
struct AwsProfileConfig {
  std::string region;
  std::string endpoint_url;
};

// The settings of `profile` ("" = AWS_PROFILE, else "default") in the shared config file.
AwsProfileConfig LoadAwsProfileConfig(const std::string& profile = "");

class AwsCredentialSource {
 public:
  AwsCredentialSource(const AwsCredentialSource&) = delete;
  AwsCredentialSource& operator=(const AwsCredentialSource&) = delete;

  // Resolves the chain for a store with these options; an error only for a source that was
  // named but is broken (a profile that does not exist, an unreadable token file).
  static Result<std::unique_ptr<AwsCredentialSource>> Resolve(const UnderStoreOptions& options);

  // The current credentials (empty: anonymous), fetched again when about to expire.
  Result<AwsCredentials> Get();
  // Where they came from ("environment", "profile default in /root/.aws/credentials", ...),
  // or what was tried when none were found.
  std::string Describe();

 private:
  enum class Kind { kNone, kStatic, kWebIdentity, kInstance };
  AwsCredentialSource() = default;
  Status Refresh();  // REQUIRES(mu_)
  Status FetchWebIdentity();  // REQUIRES(mu_)
  Status FetchInstanceRole();  // REQUIRES(mu_)

  Kind kind_ = Kind::kNone;  // set in Resolve, then read-only
  std::string description_;
  std::string role_arn_, token_file_, sts_endpoint_, imds_endpoint_;
  std::chrono::nanoseconds connect_timeout_ = std::chrono::seconds(2);
  std::mutex mu_;
  AwsCredentials creds_;  // GUARDED_BY(mu_) for temporary keys; fixed after Resolve for static ones
  std::chrono::system_clock::time_point expires_{};  // GUARDED_BY(mu_): epoch = never
};

}  // namespace sluice::ufs
