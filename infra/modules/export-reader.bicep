// Read access for the relay's identity to the Defender export account. Deployed at the export
// account's resource group, which may be in another subscription than the relay.

targetScope = 'resourceGroup'

@description('Name of the export storage account (in this module\'s resource group).')
param exportAccountName string

@description('Principal (object) id of the relay identity.')
param principalId string

var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'

resource exportAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: exportAccountName
}

// Storage Blob Data Reader on the account: the relay lists the export containers (one per
// table; new tables add containers, so a container-level grant would go stale) and reads blob
// ranges. It never writes there. Management-plane roles would not do: they list blobs but
// reads fail.
resource exportBlobReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(exportAccount.id, principalId, storageBlobDataReader)
  scope: exportAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
